//! The pooled clients towards apps: plain HTTP, or HTTPS for ports with the
//! `s` suffix. Dev servers are usually self-signed, so by default an app's
//! certificate is not verified; `[upstream_tls] verify = true` checks it
//! against a CA bundle. A second client speaks HTTP/2 only, for gRPC (h2c
//! prior knowledge, or ALPN h2 over TLS).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::revocable::Revocable;
use crate::config::{Timeouts, UpstreamTls};

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Revocable<Incoming>>;

#[derive(Debug, thiserror::Error)]
#[error("config key `upstream_tls.ca_bundle`: cannot use {path}: {reason}")]
pub struct CaBundleError {
    path: String,
    reason: String,
}

/// Accepts any certificate (self-signed dev servers) but still checks that
/// the handshake is signed by the key of the certificate presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(tls: &UpstreamTls) -> Result<ClientConfig, CaBundleError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| CaBundleError {
            path: String::new(),
            reason: err.to_string(),
        })?;
    let config = match &tls.ca_bundle {
        Some(path) if tls.verify => {
            let fail = |reason: String| CaBundleError {
                path: path.display().to_string(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| fail(err.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(fail("no usable CERTIFICATE block".to_string()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The HTTP/1.1 client (HTTP/2 where an HTTPS app offers it through ALPN)
/// and the HTTP/2-only client for gRPC.
pub fn clients(
    timeouts: &Timeouts,
    tls: &UpstreamTls,
) -> Result<(UpstreamClient, UpstreamClient), CaBundleError> {
    let tls = tls_config(tls)?;
    let connector = || {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.upstream_connect));
        http.enforce_http(false);
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http)
    };
    let http1 = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(timeouts.idle_keepalive)
        .http1_preserve_header_case(true)
        .build(connector());
    let http2 = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(timeouts.idle_keepalive)
        .http2_only(true)
        .build(connector());
    Ok((http1, http2))
}
