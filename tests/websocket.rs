//! WebSocket upgrades through portshare, to a real echo app.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::apps::{WsApp, spawn_ws_echo};
use support::{ALICE, Portshare, app_host};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response as WsResponse;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// Upper bound for a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs a test body, failing it when it does not finish within `TEST_LIMIT`.
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test did not finish in time");
}

/// Awaits `fut`, failing the test after `WAIT`.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket through portshare at `addr` to the app at `host`,
/// optionally with a session token header. Also returns the
/// `Sec-WebSocket-Key` that was sent.
async fn connect(
    addr: SocketAddr,
    host: &str,
    token: Option<&str>,
) -> (Result<(Ws, WsResponse), WsError>, String) {
    let mut req = format!("ws://127.0.0.1:{}/chat?room=1", addr.port())
        .into_client_request()
        .unwrap();
    let headers = req.headers_mut();
    headers.insert("host", HeaderValue::from_str(host).unwrap());
    if let Some(token) = token {
        headers.insert("coder-session-token", HeaderValue::from_str(token).unwrap());
    }
    let key = headers["sec-websocket-key"].to_str().unwrap().to_string();
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let result = within(
        "the handshake",
        tokio_tungstenite::client_async(req, stream),
    )
    .await;
    (result, key)
}

/// Sends a text and a binary message and expects both back.
async fn echo_round(ws: &mut Ws) {
    within("sending text", ws.send(Message::Text("hello".into())))
        .await
        .unwrap();
    let reply = within("the text echo", ws.next())
        .await
        .expect("the socket stayed open")
        .unwrap();
    assert_eq!(reply, Message::Text("hello".into()));

    let bytes = vec![0u8, 1, 2, 254, 255];
    within("sending binary", ws.send(Message::Binary(bytes.clone())))
        .await
        .unwrap();
    let reply = within("the binary echo", ws.next())
        .await
        .expect("the socket stayed open")
        .unwrap();
    assert_eq!(reply, Message::Binary(bytes));

    within("closing", ws.close(None)).await.unwrap();
}

/// The handshake headers the app recorded, by index.
fn handshake(app: &WsApp, index: usize) -> Vec<(String, String)> {
    let seen = app.handshakes.lock().unwrap();
    assert!(
        seen.len() > index,
        "the app recorded {} handshakes",
        seen.len()
    );
    seen[index].clone()
}

fn values(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test]
async fn websocket_echoes_through_public_share() {
    bounded(async {
        let ps = Portshare::start().await;
        let app = spawn_ws_echo().await;
        let host = app_host(app.port);
        ps.share(app.port, "public").await;

        // Anonymous.
        let (result, key) = connect(ps.addr, &host, None).await;
        let (mut ws, response) = result.expect("the upgrade succeeds");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        echo_round(&mut ws).await;
        let seen = handshake(&app, 0);
        assert_eq!(values(&seen, "sec-websocket-key"), vec![key]);
        assert_eq!(values(&seen, "host"), vec![host.clone()]);

        // With a session token: it does not reach the app.
        let (result, key) = connect(ps.addr, &host, Some(ALICE)).await;
        let (mut ws, _) = result.expect("the upgrade succeeds");
        echo_round(&mut ws).await;
        let seen = handshake(&app, 1);
        assert_eq!(values(&seen, "sec-websocket-key"), vec![key]);
        assert_eq!(values(&seen, "coder-session-token"), Vec::<String>::new());
        assert!(
            seen.iter().all(|(_, v)| !v.contains(ALICE)),
            "the token reached the app: {seen:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn websocket_to_owner_port_is_refused_before_upgrade() {
    bounded(async {
        let ps = Portshare::start().await;
        let app = spawn_ws_echo().await;
        let host = app_host(app.port);

        let (result, _) = connect(ps.addr, &host, None).await;
        match result {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            }
            Err(other) => panic!("expected an HTTP 401, got {other}"),
            Ok((_, response)) => panic!("the upgrade succeeded: {}", response.status()),
        }
        assert!(
            app.handshakes.lock().unwrap().is_empty(),
            "the app saw a handshake"
        );
    })
    .await;
}

#[tokio::test]
async fn websocket_as_owner_on_owner_port() {
    bounded(async {
        let ps = Portshare::start().await;
        let app = spawn_ws_echo().await;
        let host = app_host(app.port);

        let (result, key) = connect(ps.addr, &host, Some(ALICE)).await;
        let (mut ws, response) = result.expect("the owner's upgrade succeeds");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        echo_round(&mut ws).await;
        let seen = handshake(&app, 0);
        assert_eq!(values(&seen, "sec-websocket-key"), vec![key]);
        assert_eq!(values(&seen, "coder-session-token"), Vec::<String>::new());
    })
    .await;
}
