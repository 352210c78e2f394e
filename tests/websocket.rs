//! WebSocket upgrades through portshare, to a real echo app.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::apps::{WsApp, spawn_ws_echo};
use support::ws::{connect, echo_round};
use support::{ALICE, Portshare, TEST_LIMIT, app_host, bounded};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::StatusCode;

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
    bounded(TEST_LIMIT, async {
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
    bounded(TEST_LIMIT, async {
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
    bounded(TEST_LIMIT, async {
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

/// RFC 8441: a WebSocket over an HTTP/2 connection (extended CONNECT) is
/// relayed to an app that speaks the HTTP/1.1 handshake.
#[tokio::test]
async fn websocket_over_http2_extended_connect() {
    use futures_util::{SinkExt, StreamExt};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_ws_echo().await;
        let stream = tokio::net::TcpStream::connect(ps.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);

        let connect = |token: Option<&'static str>| {
            let mut req = hyper::Request::builder()
                .method(hyper::Method::CONNECT)
                .uri(format!("http://{}/chat", app_host(app.port)))
                .header("sec-websocket-version", "13");
            if let Some(token) = token {
                req = req.header("coder-session-token", token);
            }
            let mut req = req
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            req.extensions_mut()
                .insert(hyper::ext::Protocol::from_static("websocket"));
            req
        };

        // Anonymous on an owner-only port: refused before any stream opens.
        let refused = sender.send_request(connect(None)).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

        let mut response = sender.send_request(connect(Some(ALICE))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Client,
            None,
        )
        .await;
        ws.send(Message::Text("over h2".into())).await.unwrap();
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(echo, Message::Text("over h2".into()));

        let seen = handshake(&app, 0);
        assert_eq!(values(&seen, "upgrade"), vec!["websocket"]);
        assert_eq!(values(&seen, "sec-websocket-version"), vec!["13"]);
        assert_eq!(values(&seen, "sec-websocket-key").len(), 1);
        assert!(values(&seen, "coder-session-token").is_empty());
    })
    .await;
}
