//! A body that ends with an error the moment its admission is revoked, so a
//! long response (server-sent events, a slow download) or a long upload stops
//! when the rules stop admitting its caller.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::live::LiveHandle;
use crate::respond::BoxError;

#[derive(Debug, thiserror::Error)]
#[error("access to this port was revoked")]
pub struct Revoked;

pub struct Revocable<B> {
    /// `None`: an empty body (the handshake of an upgrade).
    inner: Option<B>,
    revoked: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Keeps the admission registered while the body is alive.
    _live: Option<Arc<LiveHandle>>,
}

impl<B> Revocable<B> {
    pub fn new(
        inner: B,
        revoked: WaitForCancellationFutureOwned,
        live: Option<Arc<LiveHandle>>,
    ) -> Self {
        Revocable {
            inner: Some(inner),
            revoked: Box::pin(revoked),
            _live: live,
        }
    }

    /// An empty body under the same admission.
    pub fn empty(revoked: WaitForCancellationFutureOwned, live: Option<Arc<LiveHandle>>) -> Self {
        Revocable {
            inner: None,
            revoked: Box::pin(revoked),
            _live: live,
        }
    }
}

impl<B> Body for Revocable<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.revoked.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(Revoked))));
        }
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
