//! TLS termination: the certificate chain and key from PEM files, ALPN `h2`
//! and `http/1.1`, and a reload that swaps the certificate for new
//! connections while open ones keep theirs. A broken new certificate leaves
//! the old one in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("config key `tls.cert`: cannot read certificates from {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("config key `tls.key`: cannot read a private key from {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("config key `tls`: certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

#[derive(Debug)]
pub struct Terminator {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<ServerConfig>,
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| TlsError::Cert {
            path: cert.display().to_string(),
            reason: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            reason: "no CERTIFICATE block in the file".to_string(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|err| TlsError::Key {
        path: key.display().to_string(),
        reason: err.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Config(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|err| TlsError::Config(err.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl Terminator {
    pub fn load(cert: &Path, key: &Path) -> Result<Terminator, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Terminator {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again; on error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// Reloads whenever the certificate or key file changes, checking every
    /// `every`. A file that does not make a valid configuration is logged and
    /// the certificate in use stays.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let read = |this: &Terminator| {
            (
                std::fs::read(&this.cert).ok(),
                std::fs::read(&this.key).ok(),
            )
        };
        let mut seen = read(&self);
        loop {
            tokio::time::sleep(every).await;
            let now = read(&self);
            if now == seen {
                continue;
            }
            seen = now;
            match self.reload() {
                Ok(()) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate changed on disk; reloaded")
                }
                Err(err) => tracing::error!(
                    reason = %err,
                    "TLS certificate changed on disk but was refused; the certificate in use stays"
                ),
            }
        }
    }

    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        TlsAcceptor::from(self.current.load_full())
            .accept(stream)
            .await
    }
}
