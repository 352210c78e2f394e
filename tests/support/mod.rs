//! Test support: start portshare on `127.0.0.1:0` with a known config, talk to
//! it over real sockets, and spawn real apps for it to relay to (`apps`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod apps;
pub mod binary;
pub mod postgres;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use portshare::App;
use portshare::config::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Upper bound for a whole test.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs a test body, failing it when it does not finish within `limit`.
pub async fn bounded(limit: Duration, test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(limit, test)
        .await
        .expect("the test did not finish in time");
}

/// Awaits `fut`, failing the test after `WAIT`.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub const ALICE: &str = "alice-test-token";
pub const BOB: &str = "bob-test-token";
pub const CAROL: &str = "carol-test-token";
pub const ADMIN: &str = "admin-test-token";

/// alice's workspace `dev` (max level configurable), organization acme.
pub const DEV: &str = "0b6a3f2e-1c4d-4e5f-8a9b-000000000d01";
/// alice's workspace `capped`, max level organization.
pub const CAPPED: &str = "0b6a3f2e-1c4d-4e5f-8a9b-000000000d02";
/// bob's workspace `lab`.
pub const LAB: &str = "0b6a3f2e-1c4d-4e5f-8a9b-000000000d03";

pub const ALICE_ID: &str = "0b6a3f2e-1c4d-4e5f-8a9b-0000000000a1";

fn sha256_hex(token: &str) -> String {
    portshare::identity::TokenHash::of(token).to_hex()
}

/// Knobs of the test config.
#[derive(Clone, Debug)]
pub struct Setup {
    pub dev_max_level: &'static str,
    pub sign_in_url: Option<&'static str>,
    pub trusted_proxies: &'static [&'static str],
    pub failed_tokens_per_minute: Option<u32>,
    /// More top-level TOML (tables such as `[timeouts]`).
    pub extra: String,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            dev_max_level: "public",
            sign_in_url: None,
            trusted_proxies: &[],
            failed_tokens_per_minute: None,
            extra: String::new(),
        }
    }
}

impl Setup {
    /// alice (acme, owner of `dev` and `capped`), bob (acme, owner of `lab`),
    /// carol (globex), admin (site admin, no organization).
    pub fn toml(&self) -> String {
        let mut sign_in = self
            .sign_in_url
            .map(|url| format!("sign_in_url = \"{url}\"\n"))
            .unwrap_or_default();
        sign_in.push_str(&format!("trusted_proxies = {:?}\n", self.trusted_proxies));
        // In-process tests keep shares in memory (tests/durability.rs runs the store).
        sign_in.push_str("[store]\nurl = \"memory\"\n");
        if let Some(limit) = self.failed_tokens_per_minute {
            sign_in.push_str(&format!("[limits]\nfailed_tokens_per_minute = {limit}\n"));
        }
        sign_in.push_str(&self.extra);
        sign_in.push('\n');
        format!(
            r#"listen = "127.0.0.1:0"
wildcard_host = "*.apps.localhost"
{sign_in}
[[users]]
id = "{ALICE_ID}"
username = "alice"
organizations = ["acme"]
token_sha256 = ["{alice}"]

[[users]]
id = "0b6a3f2e-1c4d-4e5f-8a9b-0000000000b2"
username = "bob"
organizations = ["acme"]
token_sha256 = ["{bob}"]

[[users]]
id = "0b6a3f2e-1c4d-4e5f-8a9b-0000000000c3"
username = "carol"
organizations = ["globex"]
token_sha256 = ["{carol}"]

[[users]]
id = "0b6a3f2e-1c4d-4e5f-8a9b-0000000000d4"
username = "admin"
site_admin = true
token_sha256 = ["{admin}"]

[[workspaces]]
id = "{DEV}"
name = "dev"
owner = "alice"
organization = "acme"
max_share_level = "{max}"
  [[workspaces.agents]]
  name = "main"
  address = "127.0.0.1"
  [[workspaces.agents]]
  name = "Second"
  address = "127.0.0.1"

[[workspaces]]
id = "{CAPPED}"
name = "capped"
owner = "alice"
organization = "acme"
max_share_level = "organization"
  [[workspaces.agents]]
  name = "main"
  address = "127.0.0.1"

[[workspaces]]
id = "{LAB}"
name = "lab"
owner = "bob"
organization = "acme"
  [[workspaces.agents]]
  name = "main"
  address = "127.0.0.1"
"#,
            alice = sha256_hex(ALICE),
            bob = sha256_hex(BOB),
            carol = sha256_hex(CAROL),
            admin = sha256_hex(ADMIN),
            max = self.dev_max_level,
        )
    }
}

/// A portshare server running in this test process on a real socket.
pub struct Portshare {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Portshare {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Portshare {
    pub async fn start() -> Portshare {
        Portshare::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> Portshare {
        Portshare::start_serving(setup, None).await
    }

    /// Starts portshare speaking TLS only, with `tls`'s certificate.
    pub async fn start_tls(setup: Setup, tls: Arc<portshare::tls::Terminator>) -> Portshare {
        Portshare::start_serving(setup, Some(tls)).await
    }

    async fn start_serving(
        setup: Setup,
        tls: Option<Arc<portshare::tls::Terminator>>,
    ) -> Portshare {
        let config = Config::parse(&setup.toml()).expect("test config is valid");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Arc::new(App::new(config).expect("upstream clients"));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(portshare::server::serve(
            app.clone(),
            listener,
            tls,
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(1),
        ));
        Portshare {
            addr,
            app,
            shutdown: Some(tx),
        }
    }

    /// Sends one request on a new connection.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        Conn::open(self.addr).await.send(req).await
    }

    /// A `GET` to `host` with extra headers.
    pub async fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(request(Method::GET, host, path, headers, Bytes::new()))
            .await
    }

    /// A call to the share API of `workspace` as the holder of `token`
    /// (sent in the `Coder-Session-Token` header).
    pub async fn api(
        &self,
        method: Method,
        token: Option<&str>,
        workspace: &str,
        body: Option<&str>,
    ) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(token) = token {
            headers.push(("coder-session-token", token));
        }
        let path = format!("/api/v2/workspaces/{workspace}/port-share");
        let body = Bytes::from(body.unwrap_or("").to_string());
        self.send(request(method, "localhost", &path, &headers, body))
            .await
    }

    /// Shares `port` of agent `main` of `dev` at `level`, as alice.
    pub async fn share(&self, port: u16, level: &str) {
        let body = format!(
            r#"{{"agent_name":"main","port":{port},"share_level":"{level}","protocol":"http"}}"#
        );
        let reply = self.api(Method::POST, Some(ALICE), DEV, Some(&body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }

    /// Deletes the share of `port` of agent `main` of `dev`, as alice.
    pub async fn unshare(&self, port: u16) {
        let body = format!(r#"{{"agent_name":"main","port":{port}}}"#);
        let reply = self
            .api(Method::DELETE, Some(ALICE), DEV, Some(&body))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
}

/// `<port>--main--dev--alice.apps.localhost`
pub fn app_host(port: u16) -> String {
    format!("{port}--main--dev--alice.apps.localhost")
}

pub fn request(
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(body)).unwrap()
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// One HTTP/1.1 keep-alive connection to portshare.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection.with_upgrades());
        Conn { sender }
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        self.try_send(req).await.expect("connection still open")
    }

    /// Like `send`, but a closed connection is an error, not a panic.
    pub async fn try_send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(req).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

pub fn header_name(name: &str) -> HeaderName {
    HeaderName::from_bytes(name.as_bytes()).unwrap()
}

pub fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap()
}
