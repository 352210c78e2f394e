//! Running portshare: /metrics after known traffic, the access and audit log
//! lines, a separate metrics listener, readiness, and a graceful drain with a
//! request in flight.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hyper::{Method, StatusCode};
use support::apps::{closed_port, spawn_app};
use support::binary::{DEMO_DEV, Served, config_on_port_zero, demo_api, raw, write_config};
use support::{ALICE, CAROL, Portshare, app_host};

/// The value of the sample line `name{labels}` in a Prometheus text page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_known_traffic() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    let dead = closed_port().await;
    ps.share(app.port, "public").await; // API POST 200
    ps.share(dead, "public").await; // API POST 200

    assert_eq!(
        ps.get(&app_host(app.port), "/", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ps.get(&app_host(app.port), "/", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ps.get(&app_host(dead), "/", &[]).await.status,
        StatusCode::BAD_GATEWAY
    );
    let owner_only = format!("{}--Second--dev--alice.apps.localhost", app.port);
    assert_eq!(
        ps.get(&owner_only, "/", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let carol = [("coder-session-token", CAROL)];
    assert_eq!(
        ps.get(&owner_only, "/", &carol).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ps.get("x.apps.localhost", "/", &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    let listed = ps.api(Method::GET, Some(ALICE), support::DEV, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let refused = ps.api(Method::GET, None, support::DEV, None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let reply = ps.get("localhost", "/metrics", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let page = reply.text();
    let counts = [
        (
            r#"portshare_forwarded_requests_total{decision="allowed",level="public"}"#,
            2.0,
        ),
        (
            r#"portshare_forwarded_requests_total{decision="upstream-error",level="public"}"#,
            1.0,
        ),
        (
            r#"portshare_forwarded_requests_total{decision="denied-anonymous",level="owner"}"#,
            1.0,
        ),
        (
            r#"portshare_forwarded_requests_total{decision="denied-forbidden",level="owner"}"#,
            1.0,
        ),
        (
            r#"portshare_forwarded_requests_total{decision="bad-request",level="none"}"#,
            1.0,
        ),
        (
            r#"portshare_api_requests_total{method="POST",status="200"}"#,
            2.0,
        ),
        (
            r#"portshare_api_requests_total{method="GET",status="200"}"#,
            1.0,
        ),
        (
            r#"portshare_api_requests_total{method="GET",status="401"}"#,
            1.0,
        ),
        (r#"portshare_shares{level="public"}"#, 2.0),
        (r#"portshare_shares{level="organization"}"#, 0.0),
        ("portshare_access_check_duration_seconds_count", 5.0),
        ("portshare_upstream_latency_seconds_count", 2.0),
        ("portshare_upgraded_connections", 0.0),
    ];
    for (series, want) in counts {
        assert_eq!(sample(&page, series), Some(want), "{series} in\n{page}");
    }
    // The scrape's own connection is open.
    assert!(
        sample(&page, "portshare_open_connections").unwrap() >= 1.0,
        "{page}"
    );
    // Bounded labels: no user, workspace or host anywhere.
    for secret in ["alice", "apps.localhost", support::DEV, ALICE] {
        assert!(!page.contains(secret), "{secret} in metrics");
    }
}

#[tokio::test]
async fn readiness_and_health() {
    let ps = Portshare::start().await;
    let ready = ps.get("localhost", "/readyz", &[]).await;
    assert_eq!(
        (ready.status, ready.text().as_str()),
        (StatusCode::OK, "ready\n")
    );
    let health = ps.get("localhost", "/healthz", &[]).await;
    assert_eq!(
        (health.status, health.text().as_str()),
        (StatusCode::OK, "ok\n")
    );
}

fn post_share(served: &Served, port: u16) -> String {
    let body = format!(r#"{{"agent_name":"main","port":{port},"share_level":"public"}}"#);
    demo_api(&served.address, "POST", &body)
}

/// With `--log-format json` every forwarded request is one access event and
/// every share change one audit event; no line holds a token.
#[test]
fn access_and_audit_log_lines() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = config_on_port_zero(&dir);
    let served = Served::start_with_args(&path, &["--log-format", "json"]);

    assert!(post_share(&served, app.port).starts_with("HTTP/1.1 200 OK"));
    let audit: serde_json::Value =
        serde_json::from_str(&served.wait_for("\"portshare::audit\"")).unwrap();
    assert_eq!(audit["message"], "share changed");
    assert_eq!(audit["level"], "INFO");
    assert_eq!(audit["actor"], "24e9065b-df8d-44cf-905b-1aebccba7f2e");
    assert_eq!(audit["actor_name"], "alice");
    assert_eq!(audit["workspace"], DEMO_DEV);
    assert_eq!(audit["agent"], "main");
    assert_eq!(audit["port"], app.port);
    assert_eq!(audit["before"], "none");
    assert_eq!(audit["after"], "public");

    let host = format!("{}--main--dev--alice.apps.localhost", app.port);
    let response = raw(
        &served.address,
        &format!(
            "GET /page?coder_session_token=bob-demo-token HTTP/1.1\r\nHost: {host}\r\n\
             Coder-Session-Token: alice-demo-token\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let line = served.wait_for("\"portshare::access\"");
    assert!(!line.contains("demo-token"), "a token in the log: {line}");
    let access: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(access["message"], "forwarded request");
    assert_eq!(access["host"], host);
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 200);
    assert_eq!(access["share_level"], "public");
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["decision"], "allowed");
    assert_eq!(access["caller"], "24e9065b-df8d-44cf-905b-1aebccba7f2e");
    assert!(access["duration_us"].as_u64().is_some());

    let response = raw(
        &served.address,
        "GET / HTTP/1.1\r\nHost: 9--main--dev--alice.apps.localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    let access: serde_json::Value =
        serde_json::from_str(&served.wait_for("\"portshare::access\"")).unwrap();
    assert_eq!(access["decision"], "denied-anonymous");
    assert_eq!(access["caller"], "anonymous");
    assert_eq!(access["share_level"], "owner");
    drop(rt);
}

#[test]
fn metrics_on_a_separate_listener() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_address = probe.local_addr().unwrap().to_string();
    drop(probe);
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = config_on_port_zero(&dir);
    let text = text.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\nmetrics_listen = \"{metrics_address}\""),
    );
    let served = Served::start(&write_config(&dir, &text));
    served.wait_for("metrics_listen");

    let page = raw(
        &metrics_address,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        page.contains("# TYPE portshare_forwarded_requests counter"),
        "{page}"
    );
    let main =
        served.exchange("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert!(main.starts_with("HTTP/1.1 404 "), "{main}");
}

/// SIGTERM: new connections are refused, the request in flight finishes,
/// then the process exits 0.
#[test]
fn sigterm_drains_a_request_in_flight() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = config_on_port_zero(&dir);
    let mut served = Served::start_with_args(&path, &["--drain-seconds", "20"]);
    assert!(post_share(&served, app.port).starts_with("HTTP/1.1 200 OK"));

    let host = format!("{}--main--dev--alice.apps.localhost", app.port);
    let mut stream = TcpStream::connect(&served.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            format!("GET /sse HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data: first") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }

    served.signal("TERM");
    served.wait_for("shutting down");
    assert!(
        TcpStream::connect(&served.address).is_err(),
        "new connections are refused while draining"
    );
    assert!(served.child.try_wait().unwrap().is_none(), "still draining");

    app.release.notify_one();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("data: second"), "{text}");
    assert_eq!(served.child.wait().unwrap().code(), Some(0));
    drop(rt);
}

/// A GET for one of the operational endpoints.
fn probe(path: &str) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    support::request(Method::GET, "localhost", path, &[], bytes::Bytes::new())
}

async fn start_with(extra: &'static str) -> Portshare {
    Portshare::start_with(support::Setup {
        extra: extra.to_string(),
        ..support::Setup::default()
    })
    .await
}

/// Reads until the server closes the connection; returns what came and when.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> (String, std::time::Instant) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match support::within("the server to close", stream.read(&mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&seen).into_owned(),
        std::time::Instant::now(),
    )
}

#[tokio::test]
async fn slow_request_heads_are_cut_at_the_header_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let ps = start_with("[timeouts]\nheader_read_seconds = 1").await;
    let mut stream = tokio::net::TcpStream::connect(ps.addr).await.unwrap();
    let started = std::time::Instant::now();
    // A head that never ends (slowloris).
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut stream).await;
    let waited = closed - started;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
}

#[tokio::test]
async fn idle_keepalive_connections_are_closed() {
    let ps = start_with("[timeouts]\nidle_keepalive_seconds = 1").await;
    let mut conn = support::Conn::open(ps.addr).await;
    let reply = conn.send(probe("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let idle_since = std::time::Instant::now();
    support::within("the idle connection to close", async {
        while !conn.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(900), "closed after {idle:?}");
}

#[tokio::test]
async fn oversized_request_heads_get_431() {
    let ps = start_with("[limits]\nmax_header_bytes = 8192").await;
    let big = "x".repeat(10_000);
    let reply = ps.get("localhost", "/healthz", &[("x-big", &big)]).await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let small = "x".repeat(4_000);
    let reply = ps
        .get("localhost", "/healthz", &[("x-small", &small)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn connections_past_the_limit_wait_for_a_slot() {
    let ps = start_with("[limits]\nmax_connections = 1").await;
    let mut first = support::Conn::open(ps.addr).await;
    let reply = first.send(probe("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);

    let addr = ps.addr;
    let second = tokio::spawn(async move {
        let mut conn = support::Conn::open(addr).await;
        conn.send(probe("/readyz")).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second connection was served while the first held the only slot"
    );
    drop(first);
    let reply = support::within("the second connection's answer", second)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "ready\n");
}
