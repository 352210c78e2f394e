//! The embedded default: one SQLite file in WAL mode with `synchronous =
//! FULL`, so a change is on disk before it is acknowledged and a crash at any
//! moment loses nothing acknowledged. The schema is versioned with
//! `PRAGMA user_version`; migrations run on open. A file that is not a
//! portshare database is refused, never overwritten.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, params};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::share::{CorsMode, Protocol, Share, ShareKey, ShareLevel};

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE shares (
        workspace_id TEXT NOT NULL,
        agent        TEXT NOT NULL,
        agent_name   TEXT NOT NULL,
        port         INTEGER NOT NULL,
        level        TEXT NOT NULL,
        protocol     TEXT NOT NULL,
        cors         TEXT NOT NULL,
        PRIMARY KEY (workspace_id, agent, port)
    ) WITHOUT ROWID"];

#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let fail = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|err| fail(format!("cannot create its folder: {err}")))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|err| fail(err.to_string()))?;
        // Reading the version first makes SQLite read the header: a file that
        // is not a database fails here, before anything is written.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|err| fail(format!("not a readable portshare database: {err}")))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(fail(format!(
                "schema version {version} is newer than this portshare understands ({known})"
            )));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|err| fail(err.to_string()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(format!("cannot switch to WAL mode (got {mode})")));
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(|err| fail(err.to_string()))?;
        let store = SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        store
            .migrate(version)
            .map_err(|err| fail(err.to_string()))?;
        Ok(store)
    }

    fn migrate(&self, from: i64) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        for (index, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(from).unwrap_or(0))
        {
            let tx = conn.transaction().map_err(io)?;
            tx.execute_batch(step).map_err(io)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(io)?;
            tx.commit().map_err(io)?;
            tracing::info!(path = %self.path.display(), version = index + 1, "share store migrated");
        }
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Io("the store's lock was poisoned".to_string()))
    }

    /// Runs `writes` in one transaction: one disk sync for all of them (bulk
    /// imports, benchmarks).
    pub fn bulk(&self, writes: impl FnOnce(&Self)) -> Result<(), StoreError> {
        self.lock()?.execute_batch("BEGIN").map_err(io)?;
        writes(self);
        self.lock()?.execute_batch("COMMIT").map_err(io)
    }

    /// The schema version on disk.
    pub fn version(&self) -> Result<i64, StoreError> {
        self.lock()?
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(io)
    }
}

const SELECT: &str = "SELECT workspace_id, agent_name, port, level, protocol, cors FROM shares";

type RawShare = (String, String, i64, String, String, String);

fn raw_share(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawShare> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn share_of(
    (workspace, agent_name, port, level, protocol, cors): RawShare,
) -> Result<Share, StoreError> {
    let bad = |what: &str| StoreError::Io(format!("a stored share has an invalid {what}"));
    Ok(Share {
        workspace_id: Uuid::parse_str(&workspace).map_err(|_| bad("workspace id"))?,
        agent_name,
        port: u16::try_from(port).map_err(|_| bad("port"))?,
        level: level.parse::<ShareLevel>().map_err(|()| bad("level"))?,
        protocol: protocol.parse::<Protocol>().map_err(|()| bad("protocol"))?,
        cors: cors.parse::<CorsMode>().map_err(|()| bad("CORS mode"))?,
    })
}

fn io(err: rusqlite::Error) -> StoreError {
    StoreError::Io(err.to_string())
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Vec<Share>, StoreError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare(SELECT).map_err(io)?;
        let rows = statement.query_map([], raw_share).map_err(io)?;
        rows.map(|row| row.map_err(io).and_then(share_of)).collect()
    }

    fn get(&self, key: &ShareKey) -> Result<Option<Share>, StoreError> {
        let conn = self.lock()?;
        let mut statement = conn
            .prepare(&format!(
                "{SELECT} WHERE workspace_id = ?1 AND agent = ?2 AND port = ?3"
            ))
            .map_err(io)?;
        let mut rows = statement
            .query_map(
                params![key.workspace_id.to_string(), &*key.agent, key.port],
                raw_share,
            )
            .map_err(io)?;
        rows.next()
            .transpose()
            .map_err(io)?
            .map(share_of)
            .transpose()
    }

    fn upsert(&self, share: &Share) -> Result<(), StoreError> {
        let key = share.key();
        self.lock()?
            .execute(
                "INSERT INTO shares (workspace_id, agent, agent_name, port, level, protocol, cors)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (workspace_id, agent, port) DO UPDATE SET
                   agent_name = excluded.agent_name, level = excluded.level,
                   protocol = excluded.protocol, cors = excluded.cors",
                params![
                    share.workspace_id.to_string(),
                    &*key.agent,
                    share.agent_name,
                    share.port,
                    share.level.as_str(),
                    super::protocol_name(share.protocol),
                    super::cors_name(share.cors),
                ],
            )
            .map(|_| ())
            .map_err(io)
    }

    fn delete(&self, key: &ShareKey) -> Result<bool, StoreError> {
        self.lock()?
            .execute(
                "DELETE FROM shares WHERE workspace_id = ?1 AND agent = ?2 AND port = ?3",
                params![key.workspace_id.to_string(), &*key.agent, key.port],
            )
            .map(|deleted| deleted > 0)
            .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(port: u16, level: ShareLevel) -> Share {
        Share {
            workspace_id: Uuid::from_u128(7),
            agent_name: "Main".into(),
            port,
            level,
            protocol: Protocol::Https,
            cors: CorsMode::Passthru,
        }
    }

    #[test]
    fn shares_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/shares.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.version().unwrap(), MIGRATIONS.len() as i64);
            store.upsert(&share(8080, ShareLevel::Public)).unwrap();
            store
                .upsert(&share(8080, ShareLevel::Organization))
                .unwrap();
            store
                .upsert(&share(9090, ShareLevel::Authenticated))
                .unwrap();
            assert!(
                store
                    .delete(&ShareKey::new(Uuid::from_u128(7), "MAIN", 9090))
                    .unwrap()
            );
            assert!(
                !store
                    .delete(&ShareKey::new(Uuid::from_u128(7), "main", 9090))
                    .unwrap()
            );
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.load().unwrap(),
            vec![share(8080, ShareLevel::Organization)]
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.db");
        let garbage = b"this is not a database, and it is precious".repeat(200);
        std::fs::write(&path, &garbage).unwrap();
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("share store {}:", path.display())),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("schema version 99 is newer"), "{err}");
    }
}
