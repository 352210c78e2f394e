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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::App;
use crate::api::{Probe, serve_probe};
use crate::apphost::normalize_host;
use crate::live::ConnWatch;
use crate::proxy::headers::forwarded_client;
use crate::proxy::{self, Target};
use crate::respond::{ApiError, AppError, Body, wants_html};
use crate::tls::Terminator;

/// How long a client may take to send the request head (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Apps see header names spelled as the client sent them
        // (`Sec-WebSocket-Key`, not `sec-websocket-key`).
        .preserve_header_case(true);
    let builder = Arc::new(builder);
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
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
                match tls.clone() {
                    None => {
                        connections.spawn(serve_connection(app, builder, stream, peer, "http", stopping));
                    }
                    Some(tls) => {
                        connections.spawn(async move {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(stream)) => {
                                    serve_connection(app, builder, stream, peer, "https", stopping).await;
                                }
                                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
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
    stopping: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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
        Err(err) => return err.into_response(wants_html(req.headers())),
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
            return AppError::InvalidHost.into_response(wants_html(req.headers()));
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
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
