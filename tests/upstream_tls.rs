//! Ports with the `s` suffix are relayed to the app over HTTPS: a
//! self-signed dev server works by default; with `[upstream_tls] verify`
//! its certificate must chain to the configured CA bundle.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use support::{ALICE, Portshare, Setup};
use tokio::net::TcpListener;

/// An HTTPS app with a self-signed certificate for 127.0.0.1; returns its
/// port and the certificate's PEM.
async fn spawn_https_app() -> (u16, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = format!("secure hello from {}", req.uri().path());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, cert_pem)
}

/// portshare with `[upstream_tls] verify = true` trusting only `ca_pem`.
async fn start_verifying(ca_pem: &str) -> (Portshare, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca_pem).unwrap();
    let ps = Portshare::start_with(Setup {
        extra: format!(
            "[upstream_tls]\nverify = true\nca_bundle = {:?}\n",
            bundle.display().to_string()
        ),
        ..Setup::default()
    })
    .await;
    (ps, dir)
}

fn secure_host(port: u16) -> String {
    format!("{port}s--main--dev--alice.apps.localhost")
}

const OWNER: [(&str, &str); 1] = [("coder-session-token", ALICE)];

#[tokio::test]
async fn self_signed_app_is_reached_without_verification_by_default() {
    let ps = Portshare::start().await;
    let (port, _) = spawn_https_app().await;
    let reply = ps.get(&secure_host(port), "/dev", &OWNER).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "secure hello from /dev");

    // The same port without the suffix speaks plain HTTP to a TLS server.
    let plain = format!("{port}--main--dev--alice.apps.localhost");
    let reply = ps.get(&plain, "/dev", &OWNER).await;
    assert_ne!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn verification_accepts_a_certificate_from_the_ca_bundle() {
    let (port, cert_pem) = spawn_https_app().await;
    let (ps, _dir) = start_verifying(&cert_pem).await;
    let reply = ps.get(&secure_host(port), "/checked", &OWNER).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "secure hello from /checked");
}

#[tokio::test]
async fn verification_refuses_an_unknown_certificate_with_502() {
    let (port, _) = spawn_https_app().await;
    let (_, other_ca) = spawn_https_app().await;
    let (ps, _dir) = start_verifying(&other_ca).await;
    let reply = ps.get(&secure_host(port), "/", &OWNER).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    let detail = reply.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("certificate"), "{detail}");
    assert!(
        detail.contains(&format!("https://127.0.0.1:{port}")),
        "{detail}"
    );
}

#[test]
fn verify_without_a_ca_bundle_is_a_config_error() {
    let setup = Setup {
        extra: "[upstream_tls]\nverify = true\n".to_string(),
        ..Setup::default()
    };
    let err = portshare::config::Config::parse(&setup.toml())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "config key `upstream_tls.ca_bundle`: required with verify = true: the CAs that sign the apps' certificates"
    );
}
