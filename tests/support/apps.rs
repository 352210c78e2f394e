//! Real apps on `127.0.0.1:0` for portshare to relay to.
//!
//! `spawn_app` serves:
//! - `/download?bytes=N`: N bytes of `pattern_byte(i)`, streamed in 64 KiB chunks;
//! - `/upload`: reads the body as a stream, signals `first_chunk` on its first
//!   bytes, answers `{"bytes", "sha256"}`;
//! - `/sse`: one event, then waits for `release`, then a second event and the end;
//! - `/cors...`: an app with its own CORS policy for `https://portal.example.com`
//!   (answers `OPTIONS` itself with `204`, adds its `Access-Control-*` headers
//!   to the echo);
//! - anything else: echoes what it received as JSON
//!   `{"method", "uri", "version", "headers": [[name, value]...], "body"}`.
//!
//! `spawn_ws_echo` is a WebSocket echo server that records the handshake
//! headers it received.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};

type AppBody = BoxBody<Bytes, Infallible>;

/// Header `(name, value)` pairs in the order received.
pub type HeaderList = Vec<(String, String)>;

/// The byte at offset `i` of a download.
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

pub fn pattern_sha256(len: usize) -> String {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(64 * 1024);
        let part: Vec<u8> = (offset..offset + n).map(pattern_byte).collect();
        hasher.update(&part);
        offset += n;
    }
    hex(&hasher.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running app and its signals.
pub struct TestApp {
    pub port: u16,
    /// Signalled when `/upload` has received its first bytes.
    pub first_chunk: Arc<Notify>,
    /// `/sse` waits for this before its second event.
    pub release: Arc<Notify>,
    /// How many requests the app has received.
    pub requests: Arc<AtomicUsize>,
}

pub async fn spawn_app() -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_chunk = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let requests = Arc::new(AtomicUsize::new(0));
    let (first, rel, count) = (first_chunk.clone(), release.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (first, rel, count) = (first.clone(), rel.clone(), count.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let (first, rel) = (first.clone(), rel.clone());
                    async move { Ok::<_, Infallible>(serve(req, first, rel).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    TestApp {
        port,
        first_chunk,
        release,
        requests,
    }
}

fn full(bytes: impl Into<Bytes>) -> AppBody {
    Full::new(bytes.into()).boxed()
}

fn channel_body(rx: mpsc::Receiver<Bytes>) -> AppBody {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

async fn serve(
    req: Request<Incoming>,
    first_chunk: Arc<Notify>,
    release: Arc<Notify>,
) -> Response<AppBody> {
    match req.uri().path() {
        "/download" => {
            let len: usize = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("bytes="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let mut offset = 0;
                while offset < len {
                    let n = (len - offset).min(64 * 1024);
                    let chunk: Vec<u8> = (offset..offset + n).map(pattern_byte).collect();
                    if tx.send(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                    offset += n;
                }
            });
            Response::builder()
                .header("content-type", "application/octet-stream")
                .body(channel_body(rx))
                .unwrap()
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut hasher = Sha256::new();
            let mut total = 0usize;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Ok(data) = frame.into_data() {
                    if total == 0 && !data.is_empty() {
                        first_chunk.notify_one();
                    }
                    total += data.len();
                    hasher.update(&data);
                }
            }
            let reply = serde_json::json!({"bytes": total, "sha256": hex(&hasher.finalize())});
            Response::new(full(reply.to_string()))
        }
        "/sse" => {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b"data: first\n\n")).await;
                release.notified().await;
                let _ = tx.send(Bytes::from_static(b"data: second\n\n")).await;
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(channel_body(rx))
                .unwrap()
        }
        path if path.starts_with("/cors") && req.method() == hyper::Method::OPTIONS => {
            Response::builder()
                .status(204)
                .header("access-control-allow-origin", APP_OWN_ORIGIN)
                .header("access-control-allow-methods", "GET, PUT")
                .header("access-control-allow-headers", "x-portal")
                .header("access-control-allow-credentials", "true")
                .header("x-app", "preflight")
                .body(full(Bytes::new()))
                .unwrap()
        }
        path if path.starts_with("/cors") => {
            let mut response = echo(req).await;
            let headers = response.headers_mut();
            headers.insert(
                "access-control-allow-origin",
                APP_OWN_ORIGIN.parse().unwrap(),
            );
            headers.insert("access-control-allow-credentials", "true".parse().unwrap());
            response
        }
        _ => echo(req).await,
    }
}

/// The external origin the `/cors` app allows on its own.
pub const APP_OWN_ORIGIN: &str = "https://portal.example.com";

async fn echo(req: Request<Incoming>) -> Response<AppBody> {
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let version = format!("{:?}", req.version());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = serde_json::json!({
        "method": method,
        "uri": uri,
        "version": version,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-app", "echo")
        .body(full(reply.to_string()))
        .unwrap()
}

/// Headers of the echo reply as `(name, value)` pairs.
pub fn echoed_headers(echo: &serde_json::Value) -> Vec<(String, String)> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_string(),
                pair[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The values the echo app received for `name`.
pub fn echoed(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echoed_headers(echo)
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect()
}

/// A WebSocket echo server; `handshakes` holds the request headers of each
/// handshake it accepted, names as received on the wire.
pub struct WsApp {
    pub port: u16,
    pub handshakes: Arc<Mutex<Vec<HeaderList>>>,
}

pub async fn spawn_ws_echo() -> WsApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(Mutex::new(Vec::new()));
    let seen = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                // The callback's error type is tungstenite's, large by design.
                #[allow(clippy::result_large_err)]
                let record = |req: &WsRequest, resp: WsResponse| {
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    seen.lock().unwrap().push(headers);
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        break;
                    }
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    WsApp { port, handshakes }
}

/// A port on which nothing listens (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
