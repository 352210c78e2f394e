//! Revocation reaches open connections: after a downgrade, a delete, a lowered
//! maximum level or a removed token, every open WebSocket, server-sent-event
//! stream and HTTP/2 stream that the new rules no longer admit is closed
//! within 100 ms of the change being acknowledged; what is still admitted
//! stays open.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portshare::config::Config;
use support::apps::{spawn_app, spawn_ws_echo};
use support::ws::{Ws, connect, echo_round};
use support::{ALICE, BOB, CAROL, Portshare, Setup, TEST_LIMIT, app_host, bounded, within};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The bound the README promises.
const REVOCATION_BOUND: Duration = Duration::from_millis(100);

async fn open_ws(ps: &Portshare, port: u16, token: Option<&str>) -> Ws {
    let (result, _) = connect(ps.addr, &app_host(port), token).await;
    let (mut ws, _) = result.expect("the WebSocket opens");
    echo_round_open(&mut ws).await;
    ws
}

/// One echo without closing.
async fn echo_round_open(ws: &mut Ws) {
    use futures_util::SinkExt;
    within("send", ws.send(Message::Text("ping".into())))
        .await
        .unwrap();
    let reply = within("echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(reply, Message::Text("ping".into()));
}

/// Waits for the close frame portshare sends on revocation and the end of the
/// stream after it; returns how long that took from `since`.
async fn expect_policy_close(ws: &mut Ws, since: Instant) -> Duration {
    let message = within("the close frame", ws.next()).await;
    let elapsed = since.elapsed();
    match message {
        Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
            assert_eq!(code, CloseCode::Policy);
            assert_eq!(reason, "access revoked");
        }
        other => panic!("expected a close frame (1008), got {other:?}"),
    }
    // Then the TCP close: the stream ends.
    loop {
        match within("the end of the stream", ws.next()).await {
            None | Some(Err(_)) => break,
            Some(Ok(Message::Close(_))) => continue,
            Some(Ok(other)) => panic!("data after the close frame: {other:?}"),
        }
    }
    elapsed
}

/// Opens `/sse` through portshare over HTTP/1.1 and reads the first event.
async fn open_sse(ps: &Portshare, port: u16, token: Option<&str>) -> Incoming {
    let stream = TcpStream::connect(ps.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::get("/sse").header("host", app_host(port));
    if let Some(token) = token {
        req = req.header("coder-session-token", token);
    }
    let response = within(
        "the SSE response",
        sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = within("the first event", body.frame())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "data: first\n\n");
    body
}

/// Releases the SSE app and checks that `body`, still admitted, receives the
/// rest of its stream.
async fn assert_stream_completes(app: &support::apps::TestApp, body: Incoming) {
    app.release.notify_waiters();
    app.release.notify_one();
    let rest = within("the rest of the admitted stream", body.collect())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "data: second\n\n");
}

/// Waits for the SSE body to end with an error (the cut connection); returns
/// how long that took from `since`.
async fn expect_cut(body: &mut Incoming, since: Instant) -> Duration {
    match within("the stream to be cut", body.frame()).await {
        Some(Err(_)) => since.elapsed(),
        Some(Ok(frame)) => panic!("more data after revocation: {frame:?}"),
        None => panic!("the stream ended cleanly; a revoked stream must be cut, not completed"),
    }
}

#[tokio::test]
async fn downgrade_closes_a_non_owner_websocket_with_1008_and_keeps_the_owners() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_ws_echo().await;
        ps.share(app.port, "authenticated").await;
        let mut carol = open_ws(&ps, app.port, Some(CAROL)).await;
        let mut alice = open_ws(&ps, app.port, Some(ALICE)).await;
        let mut bob = open_ws(&ps, app.port, Some(BOB)).await;

        ps.share(app.port, "organization").await;
        let acknowledged = Instant::now();
        let elapsed = expect_policy_close(&mut carol, acknowledged).await;
        eprintln!("websocket closed {elapsed:?} after the downgrade was acknowledged");
        assert!(elapsed < REVOCATION_BOUND, "took {elapsed:?}");

        // The owner and an organization member are still admitted.
        echo_round(&mut alice).await;
        echo_round(&mut bob).await;
    })
    .await;
}

#[tokio::test]
async fn downgrade_cuts_a_non_owner_event_stream_and_keeps_the_owners() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        ps.share(app.port, "authenticated").await;
        let mut carol = open_sse(&ps, app.port, Some(CAROL)).await;
        let alice = open_sse(&ps, app.port, Some(ALICE)).await;

        ps.share(app.port, "organization").await;
        let acknowledged = Instant::now();
        let elapsed = expect_cut(&mut carol, acknowledged).await;
        eprintln!("event stream cut {elapsed:?} after the downgrade was acknowledged");
        assert!(elapsed < REVOCATION_BOUND, "took {elapsed:?}");

        // alice's stream is intact: releasing the app delivers the rest.
        assert_stream_completes(&app, alice).await;
    })
    .await;
}

#[tokio::test]
async fn delete_closes_an_organization_members_websocket() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_ws_echo().await;
        ps.share(app.port, "organization").await;
        let mut bob = open_ws(&ps, app.port, Some(BOB)).await;
        let mut alice = open_ws(&ps, app.port, Some(ALICE)).await;

        ps.unshare(app.port).await;
        let elapsed = expect_policy_close(&mut bob, Instant::now()).await;
        assert!(elapsed < REVOCATION_BOUND, "took {elapsed:?}");
        echo_round(&mut alice).await;
    })
    .await;
}

fn reload(ps: &Portshare, setup: &Setup, edit: impl Fn(String) -> String) {
    let config = Config::parse(&edit(setup.toml())).unwrap();
    ps.app.replace_config(config);
}

#[tokio::test]
async fn lowering_the_maximum_level_closes_anonymous_websockets() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_ws_echo().await;
        ps.share(app.port, "public").await;
        let mut anonymous = open_ws(&ps, app.port, None).await;
        let mut bob = open_ws(&ps, app.port, Some(BOB)).await;

        let capped = Setup {
            dev_max_level: "organization",
            ..Setup::default()
        };
        reload(&ps, &capped, |text| text);
        let elapsed = expect_policy_close(&mut anonymous, Instant::now()).await;
        assert!(elapsed < REVOCATION_BOUND, "took {elapsed:?}");
        echo_round(&mut bob).await;
    })
    .await;
}

#[tokio::test]
async fn removing_a_token_closes_its_event_stream() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        ps.share(app.port, "organization").await;
        let mut bob = open_sse(&ps, app.port, Some(BOB)).await;

        let bob_hash = portshare::identity::TokenHash::of(BOB).to_hex();
        reload(&ps, &Setup::default(), |text| {
            let edited = text.replace(&bob_hash, &"0".repeat(64));
            assert_ne!(edited, text);
            edited
        });
        let elapsed = expect_cut(&mut bob, Instant::now()).await;
        assert!(elapsed < REVOCATION_BOUND, "took {elapsed:?}");
        assert_eq!(
            ps.app.live.len(),
            0,
            "nothing of bob's is registered any more"
        );
    })
    .await;
}

/// Over HTTP/2 (prior knowledge) a revoked stream is reset while the
/// connection and the owner's stream on it go on.
#[tokio::test]
async fn downgrade_resets_only_the_revoked_http2_stream() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        ps.share(app.port, "authenticated").await;

        let stream = TcpStream::connect(ps.addr).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let open = |token: &'static str| {
            let mut sender = sender.clone();
            let host = app_host(app.port);
            async move {
                let req = Request::get(format!("http://{host}/sse"))
                    .header("coder-session-token", token)
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = within("an HTTP/2 response", sender.send_request(req))
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.version(), hyper::Version::HTTP_2);
                let mut body = response.into_body();
                let first = within("the first event", body.frame())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(first.into_data().unwrap(), "data: first\n\n");
                body
            }
        };
        let mut carol = open(CAROL).await;
        let alice = open(ALICE).await;

        ps.share(app.port, "organization").await;
        let elapsed = expect_cut(&mut carol, Instant::now()).await;
        assert!(elapsed < REVOCATION_BOUND, "took {elapsed:?}");

        assert_stream_completes(&app, alice).await;
        assert!(!sender.is_closed(), "the HTTP/2 connection is still open");
    })
    .await;
}
