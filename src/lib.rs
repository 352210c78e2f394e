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
pub mod proxy;
pub mod respond;
pub mod server;
pub mod share;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::proxy::UpstreamClient;
use crate::share::ShareTable;

/// Everything a request handler reads.
pub struct App {
    /// Users, workspaces and agents; swapped whole, never edited in place.
    pub config: ArcSwap<Config>,
    pub shares: ShareTable,
    pub client: UpstreamClient,
}

impl App {
    pub fn new(config: Config) -> App {
        App {
            config: ArcSwap::from_pointee(config),
            shares: ShareTable::new(),
            client: proxy::upstream_client(),
        }
    }
}
