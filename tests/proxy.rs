//! Forwarded ports over real sockets: share changes closing an open connection,
//! credential and header hygiene towards the app, streaming both ways,
//! server-sent events, upstream failures, the browser hand-off, denials and
//! host names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::apps::{self, closed_port, echoed, echoed_headers, pattern_byte, spawn_app};
use support::{
    ALICE, BOB, CAROL, Conn, Portshare, Setup, TEST_LIMIT, app_host, bounded, request, within,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const MIB: usize = 1024 * 1024;

fn get(host: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    request(Method::GET, host, path, headers, Bytes::new())
}

async fn send(conn: &mut Conn, req: Request<Full<Bytes>>) -> support::Reply {
    within("a reply", conn.send(req)).await
}

// --- A client whose request bodies can stream -------------------------------

type StreamingBody = BoxBody<Bytes, Infallible>;

/// One HTTP/1.1 connection to portshare whose request bodies are streams.
async fn open_streaming(addr: SocketAddr) -> http1::SendRequest<StreamingBody> {
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let (sender, connection) = within("handshake", http1::handshake(TokioIo::new(stream)))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A request body fed chunk by chunk through `rx`; it ends when the sender
/// is dropped.
fn channel_body(rx: mpsc::Receiver<Bytes>) -> StreamingBody {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

fn no_body() -> StreamingBody {
    Full::new(Bytes::new()).boxed()
}

async fn send_streaming(
    sender: &mut http1::SendRequest<StreamingBody>,
    req: Request<StreamingBody>,
) -> Response<Incoming> {
    within("the connection to be ready", sender.ready())
        .await
        .unwrap();
    within("the response head", sender.send_request(req))
        .await
        .unwrap()
}

/// `len` bytes of the download pattern starting at `offset`.
fn pattern(offset: usize, len: usize) -> Bytes {
    Bytes::from(
        (offset..offset + len)
            .map(pattern_byte)
            .collect::<Vec<u8>>(),
    )
}

// --- 1. share changes close an open keep-alive connection -----------------

#[tokio::test]
async fn downgrade_denies_next_request_on_same_connection() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        ps.share(app.port, "authenticated").await;

        // carol is in another organization: admitted at authenticated only.
        let mut conn = Conn::open(ps.addr).await;
        let first = send(
            &mut conn,
            get(&host, "/", &[("coder-session-token", CAROL)]),
        )
        .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text());
        assert_eq!(first.header("x-app"), Some("echo"));

        // `owner` cannot be POSTed; organization is the narrower level here.
        ps.share(app.port, "organization").await;
        assert_denied_on_that_connection(&ps, &mut conn, &host, CAROL).await;
    })
    .await;
}

#[tokio::test]
async fn delete_denies_next_request_on_same_connection() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        ps.share(app.port, "organization").await;

        let mut conn = Conn::open(ps.addr).await;
        let first = send(&mut conn, get(&host, "/", &[("coder-session-token", BOB)])).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text());
        assert_eq!(first.header("x-app"), Some("echo"));

        ps.unshare(app.port).await;
        assert_denied_on_that_connection(&ps, &mut conn, &host, BOB).await;
    })
    .await;
}

#[tokio::test]
async fn change_that_still_admits_keeps_the_connection() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        ps.share(app.port, "authenticated").await;

        let mut conn = Conn::open(ps.addr).await;
        let first = send(&mut conn, get(&host, "/", &[("coder-session-token", BOB)])).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text());

        // bob is in acme: organization still admits him.
        ps.share(app.port, "organization").await;
        let second = send(&mut conn, get(&host, "/", &[("coder-session-token", BOB)])).await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.text());
        assert_eq!(second.header("x-app"), Some("echo"));
    })
    .await;
}

/// After a change that no longer admits `token`, the keep-alive connection
/// that carried its last request is closed before a next request can reach
/// the app on it, and a new connection gets the denial.
async fn assert_denied_on_that_connection(
    ps: &Portshare,
    conn: &mut Conn,
    host: &str,
    token: &str,
) {
    within("portshare to close the connection", async {
        while !conn.is_closed() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let on_old = conn
        .try_send(get(host, "/", &[("coder-session-token", token)]))
        .await;
    assert!(on_old.is_err(), "a request still went through: {on_old:?}");

    let mut fresh = Conn::open(ps.addr).await;
    let denied = send(
        &mut fresh,
        get(host, "/", &[("coder-session-token", token)]),
    )
    .await;
    assert_eq!(denied.status, StatusCode::NOT_FOUND, "{}", denied.text());
    assert_eq!(denied.header("x-app"), None, "the app did not answer");
    assert_eq!(denied.json()["message"], "Application Not Found");
}

// --- 2. what the app receives ----------------------------------------------

#[tokio::test]
async fn credentials_are_stripped_before_the_app() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        // No share: only alice's own credentials get her in.
        let cookie = format!(
            "theme=dark; coder_session_token={ALICE}; portshare_app_session={ALICE}; lang=en"
        );
        let path = format!("/path?a=1&coder_session_token={ALICE}&b=%20x");
        let mut conn = Conn::open(ps.addr).await;
        let reply = send(
            &mut conn,
            get(
                &host,
                &path,
                &[
                    ("coder-session-token", ALICE),
                    ("cookie", &cookie),
                    ("authorization", "Bearer app-own-token"),
                    ("connection", "x-secret"),
                    ("x-secret", "1"),
                    ("keep-alive", "timeout=5"),
                    ("proxy-authorization", "Basic abc"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-app"), Some("echo"));
        let echo = reply.json();

        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["version"], "HTTP/1.1");
        assert_eq!(echo["uri"], "/path?a=1&b=%20x");
        assert_eq!(echo["body"], "");

        // portshare's credentials are gone, wherever they were.
        assert_eq!(echoed(&echo, "coder-session-token"), Vec::<String>::new());
        assert_eq!(echoed(&echo, "cookie"), vec!["theme=dark; lang=en"]);
        for (name, value) in echoed_headers(&echo) {
            assert!(
                !value.contains(ALICE),
                "the token reached the app in {name}: {value}"
            );
        }

        // The app's own credentials are the app's.
        assert_eq!(echoed(&echo, "authorization"), vec!["Bearer app-own-token"]);

        // Forwarding headers.
        assert_eq!(echoed(&echo, "host"), vec![host.clone()]);
        assert_eq!(echoed(&echo, "x-forwarded-for"), vec!["127.0.0.1"]);
        assert_eq!(echoed(&echo, "x-forwarded-proto"), vec!["http"]);
        assert_eq!(echoed(&echo, "x-forwarded-host"), vec![host.clone()]);

        // Hop-by-hop headers stay on the client's hop.
        for name in ["x-secret", "keep-alive", "proxy-authorization"] {
            assert_eq!(echoed(&echo, name), Vec::<String>::new(), "{name}");
        }
        for value in echoed(&echo, "connection") {
            assert!(
                !value.to_ascii_lowercase().contains("x-secret"),
                "connection: {value}"
            );
        }

        // An inbound X-Forwarded-For from a peer that is not a trusted proxy
        // is replaced, not believed (tests/hostile.rs covers trusted proxies).
        let reply = send(
            &mut conn,
            get(
                &host,
                "/",
                &[
                    ("coder-session-token", ALICE),
                    ("x-forwarded-for", "10.1.2.3"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(echoed(&reply.json(), "x-forwarded-for"), vec!["127.0.0.1"]);
    })
    .await;
}

#[tokio::test]
async fn authorization_bearer_does_not_authenticate_on_a_forwarded_port() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        let bearer = format!("Bearer {ALICE}");
        let mut conn = Conn::open(ps.addr).await;

        let reply = send(&mut conn, get(&host, "/", &[("authorization", &bearer)])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert_eq!(reply.header("x-app"), None, "the app did not answer");

        // The same token in portshare's own header does authenticate.
        let reply = send(
            &mut conn,
            get(&host, "/", &[("coder-session-token", ALICE)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-app"), Some("echo"));
    })
    .await;
}

// --- 3. streaming bodies ----------------------------------------------------

#[tokio::test]
async fn large_upload_and_download_are_streamed() {
    const TOTAL: usize = 50 * MIB;
    bounded(Duration::from_secs(180), async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        ps.share(app.port, "public").await;
        let expected_sha = apps::pattern_sha256(TOTAL);

        // Upload: the app must see the first MiB before the rest is even sent.
        let mut sender = open_streaming(ps.addr).await;
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let req = Request::builder()
            .method(Method::POST)
            .uri("/upload")
            .header("host", &host)
            .header("content-type", "application/octet-stream")
            .body(channel_body(rx))
            .unwrap();
        within("the connection to be ready", sender.ready())
            .await
            .unwrap();
        let response = tokio::spawn(sender.send_request(req));
        within("the first chunk to be accepted", tx.send(pattern(0, MIB)))
            .await
            .unwrap();
        within(
            "the app to receive the first chunk while the rest is unsent",
            app.first_chunk.notified(),
        )
        .await;
        let mut offset = MIB;
        while offset < TOTAL {
            let n = (TOTAL - offset).min(MIB);
            within("the body to be consumed", tx.send(pattern(offset, n)))
                .await
                .unwrap();
            offset += n;
        }
        drop(tx);
        let response = within("the upload reply", response).await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = within("the upload reply body", response.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(reply, json!({"bytes": TOTAL, "sha256": expected_sha}));

        // Download, read frame by frame.
        let req = Request::builder()
            .uri(format!("/download?bytes={TOTAL}"))
            .header("host", &host)
            .body(no_body())
            .unwrap();
        let response = send_streaming(&mut sender, req).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "application/octet-stream"
        );
        let mut body = response.into_body();
        let mut hasher = Sha256::new();
        let mut received = 0usize;
        while let Some(frame) = within("a download frame", body.frame()).await {
            if let Ok(data) = frame.unwrap().into_data() {
                received += data.len();
                hasher.update(&data);
            }
        }
        assert_eq!(received, TOTAL);
        assert_eq!(apps::hex(&hasher.finalize()), expected_sha);
    })
    .await;
}

// --- 4. server-sent events --------------------------------------------------

#[tokio::test]
async fn server_sent_events_arrive_before_the_stream_ends() {
    const FIRST: &[u8] = b"data: first\n\n";
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        ps.share(app.port, "public").await;

        let mut sender = open_streaming(ps.addr).await;
        let req = Request::builder()
            .uri("/sse")
            .header("host", &host)
            .header("accept", "text/event-stream")
            .body(no_body())
            .unwrap();
        let response = send_streaming(&mut sender, req).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.into_body();

        // The first event arrives while the app still holds the stream open.
        let mut received = Vec::new();
        while received.len() < FIRST.len() {
            let frame = within("the first event", body.frame())
                .await
                .expect("the stream ended before the first event")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                received.extend_from_slice(&data);
            }
        }
        assert_eq!(String::from_utf8_lossy(&received), "data: first\n\n");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), body.frame())
                .await
                .is_err(),
            "nothing more may arrive before the app is released"
        );

        app.release.notify_one();
        while let Some(frame) = within("the rest of the stream", body.frame()).await {
            if let Ok(data) = frame.unwrap().into_data() {
                received.extend_from_slice(&data);
            }
        }
        assert_eq!(
            String::from_utf8_lossy(&received),
            "data: first\n\ndata: second\n\n"
        );
    })
    .await;
}

// --- 5. upstream failures ---------------------------------------------------

#[tokio::test]
async fn closed_port_gives_502() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let port = closed_port().await;
        let host = app_host(port);
        ps.share(port, "public").await;
        let address = format!("127.0.0.1:{port}");
        let mut conn = Conn::open(ps.addr).await;

        let reply = send(
            &mut conn,
            get(&host, "/", &[("accept", "application/json")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["message"], "Bad Gateway");
        let detail = body["detail"].as_str().expect("a detail string");
        assert!(detail.contains(&address), "detail: {detail}");

        let reply = send(&mut conn, get(&host, "/", &[("accept", "text/html")])).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = reply.text();
        assert!(page.contains("Bad Gateway"), "{page}");
        assert!(page.contains(&address), "{page}");
    })
    .await;
}

// --- 6. the browser hand-off ------------------------------------------------

#[tokio::test]
async fn browser_hand_off_sets_app_cookie() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let host = app_host(app.port);
        let mut conn = Conn::open(ps.addr).await;
        let html = ("accept", "text/html,application/xhtml+xml");

        // A navigation with a valid token in the query: 303, token into a cookie.
        let path = format!("/some/page?x=1&coder_session_token={ALICE}");
        let reply = send(&mut conn, get(&host, &path, &[html])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
        assert_eq!(reply.header("x-app"), None, "the app did not answer");
        assert_eq!(reply.header("location"), Some("/some/page?x=1"));
        let set_cookie = format!("portshare_app_session={ALICE}; Path=/; HttpOnly; SameSite=Lax");
        assert_eq!(reply.header("set-cookie"), Some(set_cookie.as_str()));
        assert!(!set_cookie.to_ascii_lowercase().contains("domain"));

        // The cookie gets the browser in, and the app never sees it.
        let cookie = format!("portshare_app_session={ALICE}");
        let reply = send(
            &mut conn,
            get(&host, "/some/page?x=1", &[html, ("cookie", &cookie)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-app"), Some("echo"));
        let echo = reply.json();
        assert_eq!(echo["uri"], "/some/page?x=1");
        assert_eq!(echoed(&echo, "cookie"), Vec::<String>::new());

        // An invalid token is not handed off.
        let reply = send(
            &mut conn,
            get(&host, "/some/page?x=1&coder_session_token=wrong", &[html]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert_eq!(reply.header("location"), None);
        assert_eq!(reply.header("set-cookie"), None);

        // Not a navigation: relayed directly, without the parameter.
        let reply = send(
            &mut conn,
            get(&host, &path, &[("accept", "application/json")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-app"), Some("echo"));
        assert_eq!(reply.header("set-cookie"), None);
        assert_eq!(reply.json()["uri"], "/some/page?x=1");
    })
    .await;
}

// --- 7. denials -------------------------------------------------------------

#[tokio::test]
async fn anonymous_denials() {
    bounded(TEST_LIMIT, async {
        let app = spawn_app().await;
        let host = app_host(app.port);

        // Without a sign-in URL.
        let ps = Portshare::start().await;
        let mut conn = Conn::open(ps.addr).await;
        let reply = send(&mut conn, get(&host, "/p?q=1", &[("accept", "application/json")])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.json()["message"],
            "Sign in to open this application"
        );
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Coder-Session-Token realm=\"portshare\"")
        );

        let reply = send(&mut conn, get(&host, "/p?q=1", &[("accept", "text/html")])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(reply.header("www-authenticate").is_some());
        assert_eq!(reply.header("location"), None);

        // Signed in, not admitted: hidden.
        let reply = send(&mut conn, get(&host, "/p?q=1", &[("coder-session-token", CAROL)])).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
        assert_eq!(reply.json()["message"], "Application Not Found");
        drop(conn);
        drop(ps);

        // With a sign-in URL, browser navigations are sent to it.
        let ps = Portshare::start_with(Setup {
            sign_in_url: Some("https://coder.example.com/login"),
            ..Default::default()
        })
        .await;
        let mut conn = Conn::open(ps.addr).await;
        let reply = send(&mut conn, get(&host, "/p?q=1", &[("accept", "text/html")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
        let expected = format!(
            "https://coder.example.com/login?redirect_uri=http%3A%2F%2F{}--main--dev--alice.apps.localhost%2Fp%3Fq%3D1",
            app.port
        );
        assert_eq!(reply.header("location"), Some(expected.as_str()));

        // Not navigations: 401, never 303.
        let post = request(
            Method::POST,
            &host,
            "/p?q=1",
            &[("accept", "text/html")],
            Bytes::from_static(b"x=1"),
        );
        let reply = send(&mut conn, post).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert_eq!(reply.header("location"), None);

        let reply = send(&mut conn, get(&host, "/p?q=1", &[("accept", "application/json")])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        assert_eq!(reply.header("location"), None);
        assert_eq!(
            reply.json()["message"],
            "Sign in to open this application"
        );

        // Signed in, not admitted: still hidden, not redirected.
        let reply = send(
            &mut conn,
            get(
                &host,
                "/p?q=1",
                &[("accept", "text/html"), ("coder-session-token", CAROL)],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
        assert_eq!(reply.header("location"), None);
    })
    .await;
}

// --- 8. host names ----------------------------------------------------------

#[tokio::test]
async fn hostnames() {
    bounded(TEST_LIMIT, async {
        let ps = Portshare::start().await;
        let app = spawn_app().await;
        let port = app.port;
        ps.share(port, "public").await;
        let mut conn = Conn::open(ps.addr).await;
        let json_accept = ("accept", "application/json");

        for host in [
            "x--y.apps.localhost",
            "9090ss--main--dev--alice.apps.localhost",
        ] {
            let reply = send(&mut conn, get(host, "/", &[json_accept])).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{host}: {}",
                reply.text()
            );
            assert_eq!(
                reply.json(),
                json!({"message": "Could not parse subdomain application URL"}),
                "{host}"
            );
        }

        let reply = send(
            &mut conn,
            get("8--main--dev--alice.apps.localhost", "/", &[json_accept]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert_eq!(
            reply.json(),
            json!({"message": "Port must be between 9 and 65535"})
        );

        // Names that do not exist, to a signed-in caller.
        for host in [
            format!("{port}--main--dev--zed.apps.localhost"),
            format!("{port}--main--nope--alice.apps.localhost"),
            format!("{port}--nope--dev--alice.apps.localhost"),
        ] {
            let reply = send(
                &mut conn,
                get(&host, "/", &[json_accept, ("coder-session-token", ALICE)]),
            )
            .await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{host}: {}",
                reply.text()
            );
            assert_eq!(reply.json()["message"], "Application Not Found", "{host}");
        }

        // Case and a port in Host do not matter; the app sees Host as sent.
        let shouted = format!("{port}--MAIN--Dev--ALICE.APPS.localhost:1234");
        let reply = send(&mut conn, get(&shouted, "/", &[json_accept])).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-app"), Some("echo"));
        assert_eq!(echoed(&reply.json(), "host"), vec![shouted.clone()]);

        // Two Host headers.
        let host = app_host(port);
        let reply = send(&mut conn, get(&host, "/", &[("host", &host), json_accept])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert_eq!(reply.header("x-app"), None, "the app did not answer");
        assert_eq!(reply.json()["message"], "Invalid Host header");

        // Outside the wildcard: the API.
        let reply = ps.get("localhost", "/", &[json_accept]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
        assert_eq!(reply.json(), json!({"message": "Route not found."}));
    })
    .await;
}
