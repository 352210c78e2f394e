//! The config file: its TOML format, validation with messages that name the key,
//! and the typed, indexed `Config` the rest of portshare reads.
//!
//! Defaults live here and nowhere else: `max_share_level` defaults to `public`,
//! `site_admin` to false, `organizations` and `token_sha256` to empty lists.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use uuid::Uuid;

use crate::apphost::{Wildcard, is_valid_part};
use crate::identity::{TokenHash, TokenIndex};
use crate::share::ShareLevel;
use crate::store::StoreUrl;

/// A config that could not be read or is not valid; `key` names the culprit.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("config key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    CaBundle(#[from] crate::proxy::CaBundleError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    plain_listen: Option<String>,
    metrics_listen: Option<String>,
    wildcard_host: Option<String>,
    sign_in_url: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    timeouts: RawTimeouts,
    tls: Option<RawTls>,
    #[serde(default)]
    upstream_tls: RawUpstreamTls,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    workspaces: Vec<RawWorkspace>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    verify: Option<bool>,
    ca_bundle: Option<PathBuf>,
}

/// How portshare checks the certificates of HTTPS apps (the `s` suffix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `upstream_tls.verify` (default false: dev servers are self-signed).
    pub verify: bool,
    /// `upstream_tls.ca_bundle`: PEM file of the CAs to trust; required
    /// with `verify = true`. Relative to the config file's folder.
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

/// PEM files for TLS termination; relative paths are relative to the config
/// file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    failed_tokens_per_minute: Option<u32>,
    max_header_bytes: Option<usize>,
    max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    header_read_seconds: Option<u64>,
    upstream_connect_seconds: Option<u64>,
    idle_keepalive_seconds: Option<u64>,
}

/// Default store file, relative to the config file's folder.
pub const DEFAULT_STORE_FILE: &str = "data/portshare.db";

/// Default of `limits.failed_tokens_per_minute`.
pub const DEFAULT_FAILED_TOKENS_PER_MINUTE: u32 = 30;
/// Default of `limits.max_header_bytes`: the request head (line and headers).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// The smallest `limits.max_header_bytes` hyper accepts.
pub const MIN_MAX_HEADER_BYTES: usize = 8192;
/// Default of `limits.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Timeouts, each from `[timeouts]`; none applies to an upgraded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `header_read_seconds` (default 30): the time a client has to send a
    /// request head, including the wait for the next one on a keep-alive
    /// connection (the slowloris guard).
    pub header_read: Duration,
    /// `upstream_connect_seconds` (default 10): connecting to an app.
    pub upstream_connect: Duration,
    /// `idle_keepalive_seconds` (default 90): a client connection with no
    /// bytes either way for this long is closed once its requests are done;
    /// pooled connections to apps idle this long are closed too.
    pub idle_keepalive: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(30),
            upstream_connect: Duration::from_secs(10),
            idle_keepalive: Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    id: String,
    username: String,
    #[serde(default)]
    organizations: Vec<String>,
    #[serde(default)]
    site_admin: bool,
    #[serde(default)]
    token_sha256: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    id: String,
    name: String,
    owner: String,
    organization: String,
    max_share_level: Option<String>,
    #[serde(default)]
    agents: Vec<RawAgent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: String,
    address: String,
}

#[derive(Debug)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub organizations: Vec<String>,
    pub site_admin: bool,
}

impl User {
    pub fn is_member_of(&self, organization: &str) -> bool {
        self.organizations.iter().any(|org| org == organization)
    }
}

#[derive(Debug)]
pub struct Agent {
    /// As written in the config; the API returns this spelling.
    pub name: String,
    /// Lowercased name: the agent part of share keys and hostnames.
    pub key: Arc<str>,
    /// Host part of the upstream URL (`127.0.0.1`, `[::1]`, `agent.internal`).
    pub upstream_host: String,
}

#[derive(Debug)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub owner_id: Uuid,
    pub organization: String,
    pub max_share_level: ShareLevel,
    pub agents: Vec<Agent>,
}

impl Workspace {
    /// The agent with this name, compared case-insensitively.
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents
            .iter()
            .find(|agent| agent.name.eq_ignore_ascii_case(name))
    }
}

/// A validated config with the indexes the request path needs.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// With `[tls]`: a second listener speaking plain HTTP (health checks
    /// inside a cluster, say); it serves everything `listen` serves.
    pub plain_listen: Option<SocketAddr>,
    /// A separate plain-HTTP listener for `/metrics` (and the health checks);
    /// when set, the main listener does not serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    pub wildcard: Wildcard,
    pub sign_in_url: Option<String>,
    /// Peers whose `X-Forwarded-*` headers are believed and extended.
    pub trusted_proxies: Vec<IpNet>,
    /// Failed token attempts allowed per client address and minute; 0: no limit.
    pub failed_tokens_per_minute: u32,
    /// `limits.max_header_bytes`: a larger request head gets 431.
    pub max_header_bytes: usize,
    /// `limits.max_connections`: further connections wait to be accepted.
    pub max_connections: usize,
    pub timeouts: Timeouts,
    /// When set, `listen` speaks TLS only.
    pub tls: Option<TlsFiles>,
    pub upstream_tls: UpstreamTls,
    /// `[store] url`: `"sqlite:PATH"` (relative to the config file's folder;
    /// default `sqlite:data/portshare.db`) or `"memory"`.
    pub store: StoreUrl,
    pub tokens: TokenIndex,
    users_by_name: HashMap<String, Arc<User>>,
    workspaces_by_id: HashMap<Uuid, Arc<Workspace>>,
    /// owner username (lowercase) → workspace name (lowercase) → workspace.
    workspaces_by_owner: HashMap<String, HashMap<String, Arc<Workspace>>>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|err| match err {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        if let Some(folder) = path.parent() {
            if let Some(tls) = config.tls.as_mut() {
                tls.cert = folder.join(&tls.cert);
                tls.key = folder.join(&tls.key);
            }
            if let Some(bundle) = config.upstream_tls.ca_bundle.as_mut() {
                *bundle = folder.join(&*bundle);
            }
            if let StoreUrl::Sqlite(file) = &mut config.store {
                *file = folder.join(&*file);
            }
        }
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Syntax {
            path: "<inline>".to_string(),
            message: describe_toml_error(text, &err),
        })?;
        raw.validate()
    }

    /// The user with this username, compared case-insensitively.
    pub fn user_by_name(&self, username: &str) -> Option<&Arc<User>> {
        if username.bytes().any(|b| b.is_ascii_uppercase()) {
            self.users_by_name.get(&username.to_ascii_lowercase())
        } else {
            self.users_by_name.get(username)
        }
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    pub fn workspace(&self, id: Uuid) -> Option<&Arc<Workspace>> {
        self.workspaces_by_id.get(&id)
    }

    /// Looks up a workspace by owner and name; both must already be lowercase
    /// (hostnames are lowercased once when parsed).
    pub fn workspace_by_owner(&self, owner: &str, name: &str) -> Option<&Arc<Workspace>> {
        self.workspaces_by_owner.get(owner)?.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &Arc<User>> {
        self.users_by_name.values()
    }

    pub fn workspaces(&self) -> impl Iterator<Item = &Arc<Workspace>> {
        self.workspaces_by_id.values()
    }
}

/// One line: where, what, and the offending line (which names the key).
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    let Some(span) = err.span() else {
        return message.to_string();
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |at| at + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |at| start + at);
    let line_no = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    format!(
        "line {line_no}, column {column}: {message} (in `{}`)",
        text[line_start..line_end].trim()
    )
}

fn parse_uuid(key: &str, raw: &str) -> Result<Uuid, ConfigError> {
    Uuid::parse_str(raw).map_err(|_| invalid(key, format!("{raw:?} is not a UUID")))
}

fn parse_level(key: &str, raw: &str) -> Result<ShareLevel, ConfigError> {
    raw.parse().map_err(|()| {
        invalid(
            key,
            format!(
                "unknown share level {raw:?}; expected owner, organization, authenticated or public"
            ),
        )
    })
}

fn check_name(key: &str, raw: &str) -> Result<(), ConfigError> {
    if is_valid_part(raw) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "{raw:?} cannot appear in a hostname: use letters, digits and single hyphens inside"
            ),
        ))
    }
}

fn parse_upstream_host(key: &str, raw: &str) -> Result<String, ConfigError> {
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
    }
    let is_dns_name = !raw.is_empty()
        && raw.len() <= 253
        && raw.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if is_dns_name {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(invalid(
            key,
            format!("{raw:?} is not an IP address or host name (no scheme, no port)"),
        ))
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let listen_raw = self
            .listen
            .ok_or_else(|| invalid("listen", "missing; e.g. listen = \"127.0.0.1:8080\""))?;
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{listen_raw:?} is not an address:port such as \"127.0.0.1:8080\""),
            )
        })?;

        let address = |key: &str, raw: &Option<String>| match raw {
            None => Ok(None),
            Some(raw) => raw.parse::<SocketAddr>().map(Some).map_err(|_| {
                invalid(
                    key,
                    format!("{raw:?} is not an address:port such as \"127.0.0.1:9090\""),
                )
            }),
        };
        let metrics_listen = address("metrics_listen", &self.metrics_listen)?;
        let plain_listen = address("plain_listen", &self.plain_listen)?;
        for (key, other) in [
            ("metrics_listen", metrics_listen),
            ("plain_listen", plain_listen),
        ] {
            if other == Some(listen) {
                return Err(invalid(key, format!("{listen} is already `listen`")));
            }
        }
        if plain_listen.is_some() && plain_listen == metrics_listen {
            return Err(invalid(
                "plain_listen",
                "is the same address as `metrics_listen`",
            ));
        }
        if plain_listen.is_some() && self.tls.is_none() {
            return Err(invalid(
                "plain_listen",
                "needs [tls]: without it `listen` already speaks plain HTTP",
            ));
        }

        let max_header_bytes = self
            .limits
            .max_header_bytes
            .unwrap_or(DEFAULT_MAX_HEADER_BYTES);
        if max_header_bytes < MIN_MAX_HEADER_BYTES {
            return Err(invalid(
                "limits.max_header_bytes",
                format!("{max_header_bytes} is below the minimum of {MIN_MAX_HEADER_BYTES}"),
            ));
        }
        let max_connections = self
            .limits
            .max_connections
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        let store = match &self.store.url {
            None => StoreUrl::Sqlite(PathBuf::from(DEFAULT_STORE_FILE)),
            Some(raw) => StoreUrl::parse(raw).ok_or_else(|| {
                invalid(
                    "store.url",
                    format!("{raw:?} is not \"memory\" or \"sqlite:PATH\""),
                )
            })?,
        };
        let upstream_tls = UpstreamTls {
            verify: self.upstream_tls.verify.unwrap_or(false),
            ca_bundle: self.upstream_tls.ca_bundle,
        };
        if upstream_tls.verify && upstream_tls.ca_bundle.is_none() {
            return Err(invalid(
                "upstream_tls.ca_bundle",
                "required with verify = true: the CAs that sign the apps' certificates",
            ));
        }
        let defaults = Timeouts::default();
        let seconds = |key: &str, value: Option<u64>, default: Duration| match value {
            None => Ok(default),
            Some(0) => Err(invalid(
                format!("timeouts.{key}"),
                "must be at least 1 second",
            )),
            Some(n) => Ok(Duration::from_secs(n)),
        };
        let timeouts = Timeouts {
            header_read: seconds(
                "header_read_seconds",
                self.timeouts.header_read_seconds,
                defaults.header_read,
            )?,
            upstream_connect: seconds(
                "upstream_connect_seconds",
                self.timeouts.upstream_connect_seconds,
                defaults.upstream_connect,
            )?,
            idle_keepalive: seconds(
                "idle_keepalive_seconds",
                self.timeouts.idle_keepalive_seconds,
                defaults.idle_keepalive,
            )?,
        };

        let wildcard_raw = self.wildcard_host.ok_or_else(|| {
            invalid(
                "wildcard_host",
                "missing; e.g. wildcard_host = \"*.apps.localhost\"",
            )
        })?;
        let wildcard =
            Wildcard::parse(&wildcard_raw).map_err(|problem| invalid("wildcard_host", problem))?;

        if let Some(url) = &self.sign_in_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|rest| rest.is_empty() || rest.contains(char::is_whitespace)) {
                return Err(invalid(
                    "sign_in_url",
                    format!("{url:?} is not an absolute http:// or https:// URL"),
                ));
            }
        }

        let mut trusted_proxies = Vec::with_capacity(self.trusted_proxies.len());
        for (i, raw) in self.trusted_proxies.iter().enumerate() {
            let net = raw
                .parse::<IpNet>()
                .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    invalid(
                        format!("trusted_proxies[{i}]"),
                        format!(
                            "{raw:?} is not an IP address or CIDR block such as \"10.0.0.0/8\""
                        ),
                    )
                })?;
            trusted_proxies.push(net);
        }

        let mut users_by_name: HashMap<String, Arc<User>> = HashMap::new();
        let mut user_ids = HashSet::new();
        let mut tokens = TokenIndex::default();
        for (i, raw) in self.users.into_iter().enumerate() {
            let key = |field: &str| format!("users[{i}].{field}");
            let id = parse_uuid(&key("id"), &raw.id)?;
            if !user_ids.insert(id) {
                return Err(invalid(key("id"), format!("duplicate user id {id}")));
            }
            check_name(&key("username"), &raw.username)?;
            let lower = raw.username.to_ascii_lowercase();
            if users_by_name.contains_key(&lower) {
                return Err(invalid(
                    key("username"),
                    format!(
                        "duplicate username {:?} (usernames are case-insensitive)",
                        raw.username
                    ),
                ));
            }
            for (j, org) in raw.organizations.iter().enumerate() {
                if org.trim().is_empty() {
                    return Err(invalid(key(&format!("organizations[{j}]")), "is empty"));
                }
            }
            let user = Arc::new(User {
                id,
                username: raw.username,
                organizations: raw.organizations,
                site_admin: raw.site_admin,
            });
            for (j, hex) in raw.token_sha256.iter().enumerate() {
                let token_key = key(&format!("token_sha256[{j}]"));
                let hash = TokenHash::from_hex(hex).ok_or_else(|| {
                    invalid(
                        &token_key,
                        "is not a SHA-256 in hex (64 characters 0-9a-f); make one with `portshare hash-token`",
                    )
                })?;
                if !tokens.insert(hash, user.clone()) {
                    return Err(invalid(
                        token_key,
                        "duplicate token hash: it already belongs to a user",
                    ));
                }
            }
            users_by_name.insert(lower, user);
        }

        let mut workspaces_by_id = HashMap::new();
        let mut workspaces_by_owner: HashMap<String, HashMap<String, Arc<Workspace>>> =
            HashMap::new();
        for (i, raw) in self.workspaces.into_iter().enumerate() {
            let key = |field: &str| format!("workspaces[{i}].{field}");
            let id = parse_uuid(&key("id"), &raw.id)?;
            if workspaces_by_id.contains_key(&id) {
                return Err(invalid(key("id"), format!("duplicate workspace id {id}")));
            }
            check_name(&key("name"), &raw.name)?;
            let owner_lower = raw.owner.to_ascii_lowercase();
            let owner = users_by_name.get(&owner_lower).ok_or_else(|| {
                invalid(
                    key("owner"),
                    format!("{:?} is not the username of any [[users]] entry", raw.owner),
                )
            })?;
            if raw.organization.trim().is_empty() {
                return Err(invalid(key("organization"), "is empty"));
            }
            let max_share_level = match &raw.max_share_level {
                Some(level) => parse_level(&key("max_share_level"), level)?,
                None => ShareLevel::Public,
            };
            let mut agents: Vec<Agent> = Vec::with_capacity(raw.agents.len());
            for (j, agent) in raw.agents.into_iter().enumerate() {
                let agent_key = |field: &str| key(&format!("agents[{j}].{field}"));
                check_name(&agent_key("name"), &agent.name)?;
                if agents
                    .iter()
                    .any(|other| other.name.eq_ignore_ascii_case(&agent.name))
                {
                    return Err(invalid(
                        agent_key("name"),
                        format!(
                            "duplicate agent name {:?} in this workspace (names are case-insensitive)",
                            agent.name
                        ),
                    ));
                }
                let upstream_host = parse_upstream_host(&agent_key("address"), &agent.address)?;
                agents.push(Agent {
                    key: Arc::from(agent.name.to_ascii_lowercase()),
                    name: agent.name,
                    upstream_host,
                });
            }
            let by_name = workspaces_by_owner.entry(owner_lower).or_default();
            let name_lower = raw.name.to_ascii_lowercase();
            if by_name.contains_key(&name_lower) {
                return Err(invalid(
                    key("name"),
                    format!(
                        "duplicate workspace name {:?} for owner {:?} (names are case-insensitive)",
                        raw.name, owner.username
                    ),
                ));
            }
            let workspace = Arc::new(Workspace {
                id,
                name: raw.name,
                owner_id: owner.id,
                organization: raw.organization,
                max_share_level,
                agents,
            });
            by_name.insert(name_lower, workspace.clone());
            workspaces_by_id.insert(id, workspace);
        }

        Ok(Config {
            listen,
            plain_listen,
            metrics_listen,
            wildcard,
            sign_in_url: self.sign_in_url,
            trusted_proxies,
            failed_tokens_per_minute: self
                .limits
                .failed_tokens_per_minute
                .unwrap_or(DEFAULT_FAILED_TOKENS_PER_MINUTE),
            max_header_bytes,
            max_connections,
            timeouts,
            upstream_tls,
            store,
            tls: self.tls.map(|tls| TlsFiles {
                cert: tls.cert,
                key: tls.key,
            }),
            tokens,
            users_by_name,
            workspaces_by_id,
            workspaces_by_owner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_ID: &str = "6f1f2b9e-0000-4000-8000-000000000001";
    const WS_ID: &str = "6f1f2b9e-0000-4000-8000-0000000000a1";

    fn base(extra_user: &str, workspace: &str) -> String {
        format!(
            r#"
listen = "127.0.0.1:0"
wildcard_host = "*.apps.localhost"

[[users]]
id = "{ALICE_ID}"
username = "alice"
organizations = ["acme"]
token_sha256 = ["{}"]
{extra_user}
{workspace}
"#,
            "ab".repeat(32)
        )
    }

    fn workspace(fields: &str) -> String {
        format!(
            r#"
[[workspaces]]
id = "{WS_ID}"
name = "dev"
owner = "alice"
organization = "acme"
{fields}
  [[workspaces.agents]]
  name = "main"
  address = "127.0.0.1"
"#
        )
    }

    fn error_of(text: &str) -> String {
        match Config::parse(text) {
            Ok(_) => panic!("config was accepted:\n{text}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn valid_config_is_indexed() {
        let config = Config::parse(&base("", &workspace(""))).unwrap();
        let ws = config.workspace_by_owner("alice", "dev").unwrap();
        assert_eq!(ws.max_share_level, ShareLevel::Public);
        assert_eq!(
            ws.agent("MAIN").map(|a| a.upstream_host.as_str()),
            Some("127.0.0.1")
        );
        assert_eq!(
            config.user_by_name("Alice").map(|u| u.id.to_string()),
            Some(ALICE_ID.to_string())
        );
    }

    #[test]
    fn unknown_level_names_the_key() {
        let err = error_of(&base("", &workspace("max_share_level = \"everyone\"")));
        assert_eq!(
            err,
            "config key `workspaces[0].max_share_level`: unknown share level \"everyone\"; expected owner, organization, authenticated or public"
        );
    }

    #[test]
    fn owner_must_be_a_user() {
        let text = base("", &workspace("")).replace("owner = \"alice\"", "owner = \"mallory\"");
        assert_eq!(
            error_of(&text),
            "config key `workspaces[0].owner`: \"mallory\" is not the username of any [[users]] entry"
        );
    }

    #[test]
    fn duplicates_are_refused() {
        let dup_user = format!("[[users]]\nid = \"{ALICE_ID}\"\nusername = \"bob\"\n");
        assert!(
            error_of(&base(&dup_user, ""))
                .starts_with("config key `users[1].id`: duplicate user id")
        );
        let dup_name =
            "[[users]]\nid = \"6f1f2b9e-0000-4000-8000-000000000002\"\nusername = \"ALICE\"\n";
        assert!(
            error_of(&base(dup_name, ""))
                .starts_with("config key `users[1].username`: duplicate username")
        );
        let two = format!(
            "{}{}",
            workspace(""),
            workspace("").replace(WS_ID, "6f1f2b9e-0000-4000-8000-0000000000a2")
        );
        assert!(
            error_of(&base("", &two))
                .starts_with("config key `workspaces[1].name`: duplicate workspace name")
        );
        let same_id = format!(
            "{}{}",
            workspace(""),
            workspace("").replace("name = \"dev\"", "name = \"other\"")
        );
        assert!(
            error_of(&base("", &same_id))
                .starts_with("config key `workspaces[1].id`: duplicate workspace id")
        );
        let agents = format!(
            "{}  [[workspaces.agents]]\n  name = \"Main\"\n  address = \"::1\"\n",
            workspace("")
        );
        assert!(
            error_of(&base("", &agents))
                .starts_with("config key `workspaces[0].agents[1].name`: duplicate agent name")
        );
    }

    #[test]
    fn malformed_uuid_and_hash_name_the_key() {
        let text = base("", "").replace(ALICE_ID, "not-a-uuid");
        assert_eq!(
            error_of(&text),
            "config key `users[0].id`: \"not-a-uuid\" is not a UUID"
        );
        let text = base("", "").replace(&"ab".repeat(32), "xyz");
        assert!(
            error_of(&text)
                .starts_with("config key `users[0].token_sha256[0]`: is not a SHA-256 in hex")
        );
    }

    #[test]
    fn wildcard_must_have_one_leading_star() {
        for bad in [
            "apps.localhost",
            "*.apps.*.localhost",
            "a*.apps.localhost",
            "*",
            "*.apps..localhost",
        ] {
            let text = base("", "").replace("*.apps.localhost", bad);
            assert!(
                error_of(&text).starts_with("config key `wildcard_host`:"),
                "{bad} accepted"
            );
        }
        let text = base("", "").replace("*.apps.localhost", "*-apps.example.com");
        assert!(Config::parse(&text).is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_listen_are_refused() {
        let err = error_of(&format!("{}\nlisten_port = 1\n", base("", "")));
        assert!(err.contains("unknown field `listen_port`"), "{err}");
        let err = error_of(&base("", "").replace("127.0.0.1:0", "localhost"));
        assert!(err.starts_with("config key `listen`:"), "{err}");
    }
}
