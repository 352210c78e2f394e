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
