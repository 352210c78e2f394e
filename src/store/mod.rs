//! Durability of the share table, behind one small trait. The in-memory table
//! stays the only thing the request path reads; the store is written before a
//! change is acknowledged and read once at start.

mod sqlite;

use std::path::PathBuf;

use crate::share::{Share, ShareKey};

pub use sqlite::SqliteStore;

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

    fn delete(&self, _key: &ShareKey) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// The store the config names (`[store] url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Memory,
    Sqlite(PathBuf),
}

impl StoreUrl {
    pub fn parse(raw: &str) -> Option<StoreUrl> {
        if raw == "memory" {
            return Some(StoreUrl::Memory);
        }
        let path = raw.strip_prefix("sqlite:")?;
        (!path.is_empty()).then(|| StoreUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        match self {
            StoreUrl::Memory => Ok(Box::new(MemoryStore)),
            StoreUrl::Sqlite(path) => Ok(Box::new(SqliteStore::open(path)?)),
        }
    }
}
