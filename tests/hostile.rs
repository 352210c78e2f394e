//! Hostile input: request smuggling, host confusion, spoofed forwarding
//! headers and token brute force. Each request either gets a 400 (or 429) or
//! is routed by the one authority portshare trusts, never to another port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::apps::{TestApp, echoed, spawn_app};
use support::{ALICE, Portshare, Setup, app_host, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `raw` to portshare and reads until the server closes or 10 s pass;
/// returns the status line and the whole answer.
async fn raw_exchange(ps: &Portshare, raw: &str) -> (String, String) {
    let mut stream = TcpStream::connect(ps.addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = within("portshare's answer", async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    // One response is enough when the server keeps the
                    // connection open: stop at the end of its body.
                    let text = String::from_utf8_lossy(&answer);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_string)
                            })
                            .and_then(|n| n.trim().parse::<usize>().ok());
                        if len.is_some_and(|len| body.len() >= len) {
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    (status, text)
}

async fn public_app(ps: &Portshare) -> TestApp {
    let app = spawn_app().await;
    ps.share(app.port, "public").await;
    app
}

fn requests(app: &TestApp) -> usize {
    app.requests.load(Ordering::SeqCst)
}

#[tokio::test]
async fn conflicting_content_lengths_are_400() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        app_host(app.port)
    );
    let (status, _) = raw_exchange(&ps, &raw).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(requests(&app), 0, "nothing reached the app");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_not_smuggled() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let host = app_host(app.port);
    // A classic CL.TE smuggling attempt: the chunked body ends early and a
    // second request for another (owner-only) port hides behind it.
    let hidden = "GET /smuggled HTTP/1.1\r\nHost: 9999--main--dev--alice.apps.localhost\r\n\r\n";
    let raw = format!(
        "POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
        5 + hidden.len()
    );
    // The chunked framing wins (RFC 9112, 6.1): the app gets one POST with
    // an empty body, and the connection is closed after the answer, so the
    // hidden request is never read as a request.
    let (status, text) = raw_exchange(&ps, &raw).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{text}"
    );
    let echo: serde_json::Value =
        serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(echo["uri"], "/first");
    assert_eq!(echo["body"], "");
    assert!(!text.contains("smuggled"));
    assert_eq!(requests(&app), 1, "only the first request reached the app");
}

#[tokio::test]
async fn two_host_headers_are_400() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nHost: 9999--main--dev--alice.apps.localhost\r\nConnection: close\r\n\r\n",
        app_host(app.port)
    );
    let (status, text) = raw_exchange(&ps, &raw).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request", "{text}");
    assert!(
        text.ends_with(r#"{"message":"Invalid Host header"}"#),
        "{text}"
    );
    assert_eq!(requests(&app), 0);
}

#[tokio::test]
async fn absolute_form_naming_another_host_is_400() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let raw = format!(
        "GET http://9999--main--dev--alice.apps.localhost/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app_host(app.port)
    );
    let (status, _) = raw_exchange(&ps, &raw).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(requests(&app), 0);

    // The same absolute form agreeing with Host is routed normally.
    let host = app_host(app.port);
    let raw =
        format!("GET http://{host}/same HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let (status, text) = raw_exchange(&ps, &raw).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    assert_eq!(requests(&app), 1);
}

#[tokio::test]
async fn http2_authority_disagreeing_with_host_is_400() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let stream = TcpStream::connect(ps.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("http://{}/", app_host(app.port)))
        .header("host", "9999--main--dev--alice.apps.localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = within("the HTTP/2 answer", sender.send_request(req))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(requests(&app), 0);

    // :authority alone routes the request.
    let req = Request::get(format!("http://{}/h2", app_host(app.port)))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = within("the HTTP/2 answer", sender.send_request(req))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["uri"], "/h2");
    assert_eq!(echoed(&echo, "host"), vec![app_host(app.port)]);
}

#[tokio::test]
async fn http10_without_host_goes_to_the_api_not_an_app() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let (status, text) = raw_exchange(&ps, "GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.0 404 Not Found", "{text}");
    assert!(
        text.ends_with(r#"{"message":"Route not found."}"#),
        "{text}"
    );
    let (status, _) = raw_exchange(&ps, "GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.0 200 OK");
    assert_eq!(requests(&app), 0);
}

#[tokio::test]
async fn odd_hosts_are_400() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let port = app.port;
    for host in [
        format!("alice@{port}--main--dev--alice.apps.localhost"),
        format!("{port}%2D%2Dmain--dev--alice.apps.localhost"),
        format!("{port}--main--dev--alice.apps.localhost%00.evil.example"),
        format!("{port}--m\u{e4}in--dev--alice.apps.localhost"),
        format!("{port}--main--dev--alice.apps.localhost:80:80"),
    ] {
        let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let (status, text) = raw_exchange(&ps, &raw).await;
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{host}: {text}");
    }
    assert_eq!(requests(&app), 0);
}

#[tokio::test]
async fn spoofed_forwarding_headers_are_replaced() {
    let ps = Portshare::start().await;
    let app = public_app(&ps).await;
    let reply = ps
        .get(
            &app_host(app.port),
            "/",
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "bank.example"),
                ("forwarded", "for=203.0.113.9"),
            ],
        )
        .await;
    let echo = reply.json();
    assert_eq!(echoed(&echo, "x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(echoed(&echo, "x-forwarded-proto"), vec!["http"]);
    assert_eq!(echoed(&echo, "x-forwarded-host"), vec![app_host(app.port)]);
    assert!(echoed(&echo, "forwarded").is_empty());
}

#[tokio::test]
async fn a_trusted_proxy_extends_the_chain() {
    let ps = Portshare::start_with(Setup {
        trusted_proxies: &["127.0.0.0/8"],
        ..Setup::default()
    })
    .await;
    let app = public_app(&ps).await;
    let reply = ps
        .get(
            &app_host(app.port),
            "/",
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "public.example"),
            ],
        )
        .await;
    let echo = reply.json();
    assert_eq!(
        echoed(&echo, "x-forwarded-for"),
        vec!["203.0.113.9, 127.0.0.1"]
    );
    assert_eq!(echoed(&echo, "x-forwarded-proto"), vec!["https"]);
    assert_eq!(echoed(&echo, "x-forwarded-host"), vec!["public.example"]);
}

#[tokio::test]
async fn failed_tokens_are_rate_limited_per_client_address() {
    // 127.0.0.0/8 is trusted so that X-Forwarded-For can stand for two
    // different client addresses on this one machine.
    let ps = Portshare::start_with(Setup {
        failed_tokens_per_minute: Some(3),
        trusted_proxies: &["127.0.0.0/8"],
        ..Setup::default()
    })
    .await;
    let app = spawn_app().await; // owner-only
    let host = app_host(app.port);
    let from = |client: &'static str, token: &'static str| {
        vec![("x-forwarded-for", client), ("coder-session-token", token)]
    };

    for guess in ["guess-1", "guess-2", "guess-3"] {
        let reply = ps.get(&host, "/", &from("198.51.100.7", guess)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{guess}");
    }
    let blocked = ps.get(&host, "/", &from("198.51.100.7", "guess-4")).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(blocked.header("retry-after"), Some("20"));
    assert_eq!(
        blocked.json()["message"],
        "Too many failed sign-in attempts from this address."
    );
    // While blocked, a token gets no answer about its validity.
    let valid = ps.get(&host, "/", &from("198.51.100.7", ALICE)).await;
    assert_eq!(valid.status, StatusCode::TOO_MANY_REQUESTS);
    // The API counts the same attempts.
    let api = ps
        .send(support::request(
            hyper::Method::GET,
            "localhost",
            &format!("/api/v2/workspaces/{}/port-share", support::DEV),
            &from("198.51.100.7", "guess-5"),
            Bytes::new(),
        ))
        .await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.header("retry-after"), Some("20"));

    // Another address, and the owner there, are not slowed.
    let other = ps.get(&host, "/", &from("198.51.100.8", ALICE)).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(requests(&app), 1);
}
