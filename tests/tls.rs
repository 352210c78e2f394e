//! TLS termination: HTTP/1.1 and HTTP/2 (ALPN) clients, the app cookie marked
//! `Secure`, and certificate reload that keeps open connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portshare::tls::Terminator;
use rustls::pki_types::{CertificateDer, ServerName};
use support::apps::{echoed, spawn_app};
use support::{ALICE, Portshare, Setup, app_host, within};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for the test wildcard, written as PEM files.
struct Cert {
    der: CertificateDer<'static>,
}

fn write_cert(dir: &Path) -> Cert {
    let names = vec!["*.apps.localhost".to_string(), "localhost".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    Cert {
        der: certified.cert.der().clone(),
    }
}

async fn start(dir: &Path) -> (Portshare, Arc<Terminator>) {
    let tls = Arc::new(Terminator::load(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap());
    (
        Portshare::start_tls(Setup::default(), tls.clone()).await,
        tls,
    )
}

/// A TLS connection to portshare for `host`, trusting only `cert`.
async fn connect(ps: &Portshare, cert: &Cert, host: &str, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(ps.addr).await.unwrap();
    let name = ServerName::try_from(host.to_string()).unwrap();
    within(
        "the TLS handshake",
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .unwrap()
}

fn get(host: &str, path: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut req = Request::get(path).header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Empty::new()).unwrap()
}

#[tokio::test]
async fn http1_over_tls_sets_a_secure_app_cookie_and_forwards_https() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_cert(dir.path());
    let (ps, _) = start(dir.path()).await;
    let app = spawn_app().await;
    let host = app_host(app.port);

    let stream = connect(&ps, &cert, &host, &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);

    let path = format!("/page?coder_session_token={ALICE}");
    let response = sender
        .send_request(get(&host, &path, &[("accept", "text/html")]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["set-cookie"],
        format!("portshare_app_session={ALICE}; Path=/; HttpOnly; SameSite=Lax; Secure").as_str()
    );
    response.into_body().collect().await.unwrap();

    let cookie = format!("portshare_app_session={ALICE}");
    let response = sender
        .send_request(get(&host, "/page", &[("cookie", &cookie)]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed(&echo, "x-forwarded-proto"), vec!["https"]);
}

#[tokio::test]
async fn http2_clients_get_http2_through_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_cert(dir.path());
    let (ps, _) = start(dir.path()).await;
    let app = spawn_app().await;
    let host = app_host(app.port);

    let stream = connect(&ps, &cert, &host, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("https://{host}/over-h2"))
        .header("coder-session-token", ALICE)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["uri"], "/over-h2");
    assert_eq!(echoed(&echo, "x-forwarded-proto"), vec!["https"]);
}

#[tokio::test]
async fn certificate_reload_keeps_open_connections_and_survives_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let (ps, tls) = start(dir.path()).await;
    let app = spawn_app().await;
    let host = app_host(app.port);
    let owner = [("coder-session-token", ALICE)];

    let stream = connect(&ps, &first, &host, &[b"http/1.1"]).await;
    let (mut open, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = open.send_request(get(&host, "/", &owner)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();

    let second = write_cert(dir.path());
    tls.reload().unwrap();

    // The open connection goes on with the first certificate.
    let response = open
        .send_request(get(&host, "/again", &owner))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();

    // A new connection gets the second one.
    let stream = connect(&ps, &second, &host, &[b"http/1.1"]).await;
    let served = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(served, second.der);

    // A broken file is refused and the second certificate stays in use.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.starts_with("config key `tls.cert`"), "{err}");
    let stream = connect(&ps, &second, &host, &[b"http/1.1"]).await;
    assert_eq!(
        stream.get_ref().1.peer_certificates().unwrap()[0],
        second.der
    );
}

#[tokio::test]
async fn a_certificate_changed_on_disk_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let (ps, tls) = start(dir.path()).await;
    tokio::spawn(tls.clone().watch(std::time::Duration::from_millis(50)));
    let host = "localhost";
    let stream = connect(&ps, &first, host, &[b"http/1.1"]).await;
    assert_eq!(
        stream.get_ref().1.peer_certificates().unwrap()[0],
        first.der
    );

    let second = write_cert(dir.path());
    within("the new certificate to be served", async {
        loop {
            let tcp = TcpStream::connect(ps.addr).await.unwrap();
            let mut roots = rustls::RootCertStore::empty();
            roots.add(second.der.clone()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(host.to_string()).unwrap();
            if TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await;
}

/// `plain_listen` serves plain HTTP next to the TLS listener, which refuses
/// plain HTTP.
#[test]
fn plain_listener_next_to_tls() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain = probe.local_addr().unwrap().to_string();
    drop(probe);
    let (_, text) = support::binary::config_on_port_zero(&dir);
    let text = text.replace(
        "wildcard_host = \"*.apps.localhost\"",
        &format!(
            "wildcard_host = \"*.apps.localhost\"\nplain_listen = \"{plain}\"\n\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"
        ),
    );
    let served = support::binary::Served::start(&support::binary::write_config(&dir, &text));
    served.wait_for("plain_listen");

    let mut stream = std::net::TcpStream::connect(&plain).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    let mut stream = std::net::TcpStream::connect(&served.address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
}
