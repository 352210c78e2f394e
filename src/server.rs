//! Sockets: accept connections, serve HTTP/1.1 and HTTP/2 (prior knowledge)
//! on each, route every request, and drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::App;
use crate::api::{Probe, serve_probe};
use crate::apphost::normalize_host;
use crate::live::ConnWatch;
use crate::proxy::headers::forwarded_client;
use crate::proxy::{self, Target};
use crate::respond::{ApiError, AppError, Body, Format};
use crate::tls::Terminator;

/// How long a client may take to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes, then stops accepting and gives open
/// connections up to `drain` to finish.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<Terminator>>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let (timeouts, max_header_bytes, max_connections) = {
        let config = app.config.load();
        (
            config.timeouts,
            config.max_header_bytes,
            config.max_connections,
        )
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        // A larger request head is answered 431.
        .max_buf_size(max_header_bytes)
        // Apps see header names spelled as the client sent them
        // (`Sec-WebSocket-Key`, not `sec-websocket-key`).
        .preserve_header_case(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        // WebSockets over HTTP/2 (RFC 8441 extended CONNECT).
        .enable_connect_protocol()
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    // Past `max_connections`, new connections wait in the listen backlog.
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (app, builder, stopping) = (app.clone(), builder.clone(), stopping.clone());
                let idle = timeouts.idle_keepalive;
                match tls.clone() {
                    None => {
                        connections.spawn(async move {
                            serve_connection(app, builder, stream, peer, "http", idle, stopping).await;
                            drop(slot);
                        });
                    }
                    Some(tls) => {
                        connections.spawn(async move {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(stream)) => {
                                    serve_connection(app, builder, stream, peer, "https", idle, stopping).await;
                                }
                                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                            drop(slot);
                        });
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining open connections");
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain,
            "drain deadline passed; closing the remaining connections"
        );
    }
}

/// Serves one connection until it ends. Closes it gracefully (in-flight
/// requests finish, idle keep-alive ends) when the server stops or when the
/// rules stop admitting the caller its last request was admitted for.
async fn serve_connection<I>(
    app: Arc<App>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: I,
    peer: SocketAddr,
    scheme: &'static str,
    idle: Duration,
    stopping: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, activity) = Activity::new(stream);
    let _open = app.metrics.connection_opened();
    let watch = Arc::new(ConnWatch::default());
    let service = {
        let watch = watch.clone();
        service_fn(move |req| {
            let (app, watch) = (app.clone(), watch.clone());
            async move { Ok::<_, Infallible>(route(&app, peer, scheme, &watch, req).await) }
        })
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = activity.idle_for(idle) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = stopping.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = watch.close.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "connection ended with an error");
    }
}

/// The authority the request is for. Host confusion is refused: two `Host`
/// headers, or a request target (or HTTP/2 `:authority`) that names another
/// host than `Host`.
fn authority(req: &Request<Incoming>) -> Result<Option<&str>, AppError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(AppError::InvalidHost);
    }
    let host = host
        .map(HeaderValue::to_str)
        .transpose()
        .map_err(|_| AppError::InvalidHost)?;
    match (req.uri().authority().map(|a| a.as_str()), host) {
        (Some(target), Some(host)) if !target.eq_ignore_ascii_case(host) => {
            Err(AppError::InvalidHost)
        }
        (Some(target), _) => Ok(Some(target)),
        (None, host) => Ok(host),
    }
}

async fn route(
    app: &App,
    peer: SocketAddr,
    scheme: &'static str,
    conn: &ConnWatch,
    req: Request<Incoming>,
) -> Response<Body> {
    let authority = match authority(&req) {
        Ok(authority) => authority.map(str::to_string),
        Err(err) => return err.into_response(Format::of(req.headers())),
    };
    let config = app.config.load();
    let via_trusted_proxy = config.is_trusted_proxy(peer.ip());
    let client = if via_trusted_proxy {
        forwarded_client(req.headers(), peer.ip(), |ip| config.is_trusted_proxy(ip))
    } else {
        peer.ip()
    };
    if let Some(authority) = authority.as_deref() {
        let Some(host) = normalize_host(authority) else {
            return AppError::InvalidHost.into_response(Format::of(req.headers()));
        };
        if let Some(subdomain) = config.wildcard.subdomain(&host) {
            let subdomain = subdomain.to_string();
            drop(config);
            let target = Target {
                subdomain: &subdomain,
                authority,
                peer,
                client,
                via_trusted_proxy,
                scheme,
                conn,
            };
            return proxy::handle(app, target, req).await;
        }
    }
    drop(config);
    crate::api::handle(app, client, req).await
}

/// Serves only the operational endpoints (`/metrics`, `/healthz`, `/readyz`)
/// over plain HTTP/1.1, for `metrics_listen`, until `shutdown` completes.
pub async fn serve_probes(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let header_read = app.config.load().timeouts.header_read;
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(%err, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let app = app.clone();
                async move {
                    let probe = match req.uri().path() {
                        "/metrics" => Some(Probe::Metrics),
                        "/healthz" => Some(Probe::Health),
                        "/readyz" => Some(Probe::Ready),
                        _ => None,
                    };
                    Ok::<_, Infallible>(match probe {
                        Some(probe) => serve_probe(&app, probe, req.method()),
                        None => ApiError::new(hyper::StatusCode::NOT_FOUND, "Route not found.")
                            .into_response(),
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A stream that notes when it last moved a byte either way, so that an idle
/// connection can be told from a busy one.
struct Activity<I> {
    inner: I,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last read or write.
    last: Arc<AtomicU64>,
}

/// The reading side of `Activity`.
struct ActivityClock {
    epoch: Instant,
    last: Arc<AtomicU64>,
}

impl<I> Activity<I> {
    fn new(inner: I) -> (Activity<I>, ActivityClock) {
        let epoch = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let clock = ActivityClock {
            epoch,
            last: last.clone(),
        };
        (Activity { inner, epoch, last }, clock)
    }

    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }
}

impl ActivityClock {
    /// Completes once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let quiet = self.epoch.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Activity<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Activity<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
