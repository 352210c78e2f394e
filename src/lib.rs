//! portshare: a reverse-proxy sidecar that decides, request by request, who may
//! reach each forwarded port of a development workspace.
//!
//! Data flows one way: listener → router (API or forwarded port?) → for the
//! API, auth → handler → share table; for a forwarded port, parse host →
//! identify caller → decide (pure) → relay to the app.

pub mod access;
pub mod api;
pub mod apphost;
pub mod config;
pub mod identity;
pub mod live;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
pub mod respond;
pub mod server;
pub mod share;
pub mod store;
pub mod tls;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::live::LiveSet;
use crate::proxy::UpstreamClient;
use crate::share::ShareTable;

/// Everything a request handler reads.
pub struct App {
    /// Users, workspaces and agents; swapped whole, never edited in place.
    pub config: ArcSwap<Config>,
    pub shares: ShareTable,
    pub client: UpstreamClient,
    /// HTTP/2 only, for gRPC.
    pub grpc_client: UpstreamClient,
    /// Open exchanges and connections, re-checked after every rule change.
    pub live: Arc<LiveSet>,
    pub failed_tokens: ratelimit::FailedTokens,
    pub metrics: metrics::Metrics,
    /// Where shares are kept; written before a change is acknowledged.
    pub store: Arc<dyn store::Store>,
    /// One share change at a time, so the store and the table see the same order.
    pub writes: tokio::sync::Mutex<()>,
}

impl App {
    /// Opens the store and loads its shares into the table. Fails when
    /// `upstream_tls.ca_bundle` or the store cannot be used.
    pub fn new(config: Config) -> Result<App, config::ConfigError> {
        let (client, grpc_client) =
            proxy::upstream_clients(&config.timeouts, &config.upstream_tls)?;
        let store: Arc<dyn store::Store> = Arc::from(config.store.open()?);
        let shares = ShareTable::new();
        for share in store.load()? {
            shares.upsert(share);
        }
        Ok(App {
            store,
            writes: tokio::sync::Mutex::new(()),
            client,
            grpc_client,
            config: ArcSwap::from_pointee(config),
            shares,
            live: Arc::new(LiveSet::default()),
            failed_tokens: ratelimit::FailedTokens::default(),
            metrics: metrics::Metrics::default(),
        })
    }

    /// Follows the changes other replicas make to a shared store (PostgreSQL);
    /// call once, after the app is in an `Arc`, outside the async runtime's
    /// threads (the store calls back from a thread of its own).
    pub fn follow_store(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        self.store.subscribe(Arc::new(move |change| {
            let Some(app) = app.upgrade() else {
                return Ok(());
            };
            // Read and apply under the write lock: a local write cannot slip
            // between reading a row and applying it, so an older value never
            // overwrites a newer one.
            let _one_at_a_time = app.writes.blocking_lock();
            match change {
                store::Change::Touched(key) => match app.store.get(&key)? {
                    Some(share) => {
                        app.shares.upsert(share);
                    }
                    None => {
                        app.shares.remove(&key);
                    }
                },
                store::Change::Reconnected => app.shares.replace_all(app.store.load()?),
            }
            app.revoke();
            Ok(())
        }));
    }

    /// Replaces users, workspaces and agents; open connections the new rules
    /// no longer admit are closed.
    pub fn replace_config(&self, config: Config) {
        self.config.store(Arc::new(config));
        self.revoke();
    }

    /// The brute-force guard for a request from `client` whose token
    /// candidates were `identified`: `Err(wait)` when the client must wait
    /// (whatever the token), otherwise a failed attempt is counted.
    pub fn guard_tokens(
        &self,
        config: &Config,
        client: std::net::IpAddr,
        identified: &identity::Identified,
    ) -> Result<(), std::time::Duration> {
        if !identified.presented {
            return Ok(());
        }
        let per_minute = config.failed_tokens_per_minute;
        if let Some(wait) = self.failed_tokens.retry_after(client, per_minute) {
            return Err(wait);
        }
        if identified.token.is_none() {
            self.failed_tokens.record_failure(client, per_minute);
        }
        Ok(())
    }

    /// Closes what the rules in force no longer admit; call after every change
    /// of shares or config. Returns how many exchanges or connections it closed.
    pub fn revoke(&self) -> usize {
        let revoked = self.live.sweep(&self.config.load(), &self.shares);
        if revoked > 0 {
            tracing::info!(revoked, "closed connections the new rules no longer admit");
        }
        revoked
    }
}
