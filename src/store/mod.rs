//! Durability of the share table, behind one small trait. The in-memory table
//! stays the only thing the request path reads; the store is written before a
//! change is acknowledged and read once at start.

mod postgres;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use crate::share::{CorsMode, Protocol, Share, ShareKey};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What a shared store reports: which shares to read again.
#[derive(Debug)]
pub enum Change {
    /// This share was written (by any replica): read it again.
    Touched(ShareKey),
    /// The store was (re)connected: read the whole table again.
    Reconnected,
}

/// Applies a change; an error makes the store reconnect and report
/// `Reconnected`.
pub type OnChange = Arc<dyn Fn(Change) -> Result<(), StoreError> + Send + Sync>;

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http => "http",
        Protocol::Https => "https",
    }
}

fn cors_name(cors: CorsMode) -> &'static str {
    match cors {
        CorsMode::Managed => "managed",
        CorsMode::Passthru => "passthru",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("share store {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("share store: {0}")]
    Io(String),
}

/// Where shares are kept.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Every stored share.
    fn load(&self) -> Result<Vec<Share>, StoreError>;
    /// Inserts or replaces; durable when it returns.
    fn upsert(&self, share: &Share) -> Result<(), StoreError>;
    /// Removes; durable when it returns. False when there was no such share.
    fn delete(&self, key: &ShareKey) -> Result<bool, StoreError>;
    /// One share; `None` when there is none.
    fn get(&self, key: &ShareKey) -> Result<Option<Share>, StoreError>;
    /// For stores shared between replicas: report the others' changes.
    fn subscribe(&self, _on_change: OnChange) {}
}

/// Keeps nothing: a restart forgets every share (tests, throwaway setups).
#[derive(Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn load(&self) -> Result<Vec<Share>, StoreError> {
        Ok(Vec::new())
    }

    fn upsert(&self, _share: &Share) -> Result<(), StoreError> {
        Ok(())
    }

    /// The table alone knows what existed.
    fn delete(&self, _key: &ShareKey) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn get(&self, _key: &ShareKey) -> Result<Option<Share>, StoreError> {
        Ok(None)
    }
}

/// The store the config names (`[store] url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Memory,
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreUrl {
    pub fn parse(raw: &str) -> Option<StoreUrl> {
        if raw == "memory" {
            return Some(StoreUrl::Memory);
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Some(StoreUrl::Postgres(raw.to_string()));
        }
        let path = raw.strip_prefix("sqlite:")?;
        (!path.is_empty()).then(|| StoreUrl::Sqlite(PathBuf::from(path)))
    }

    /// For logs: the file, or the kind of store (never a password).
    pub fn describe(&self) -> String {
        match self {
            StoreUrl::Memory => "memory".to_string(),
            StoreUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => postgres::redact(url),
        }
    }

    pub fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        match self {
            StoreUrl::Memory => Ok(Box::new(MemoryStore)),
            StoreUrl::Sqlite(path) => Ok(Box::new(SqliteStore::open(path)?)),
            StoreUrl::Postgres(url) => Ok(Box::new(PgStore::open(url)?)),
        }
    }
}
