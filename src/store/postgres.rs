//! PostgreSQL, for several replicas serving one fleet. Every write commits
//! with a `NOTIFY portshare_shares` naming the key; each replica LISTENs on
//! its own connection and re-reads that row, so all replicas end with the
//! value the database committed last (its order, not clocks). After a lost
//! connection the listener reconnects with backoff and reloads the whole
//! table before applying notifications again. While the database is down,
//! replicas keep serving what they have and writes fail (the API's 503).

use std::sync::Mutex;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use uuid::Uuid;

use super::{Change, OnChange, Store, StoreError};
use crate::share::{CorsMode, Protocol, Share, ShareKey, ShareLevel};

const CHANNEL: &str = "portshare_shares";

/// Version 1 of the schema; later versions add statements after it.
const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS portshare_shares (
        workspace_id TEXT NOT NULL,
        agent        TEXT NOT NULL,
        agent_name   TEXT NOT NULL,
        port         INTEGER NOT NULL,
        level        TEXT NOT NULL,
        protocol     TEXT NOT NULL,
        cors         TEXT NOT NULL,
        PRIMARY KEY (workspace_id, agent, port)
    )"];

pub struct PgStore {
    url: String,
    /// `None` after a failure: the next write reconnects.
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

fn pg(err: postgres::Error) -> StoreError {
    StoreError::Io(format!("PostgreSQL: {err}"))
}

fn connect(url: &str) -> Result<Client, StoreError> {
    Client::connect(url, NoTls).map_err(pg)
}

fn key_payload(key: &ShareKey) -> String {
    format!("{}/{}/{}", key.workspace_id, key.agent, key.port)
}

fn parse_payload(payload: &str) -> Option<ShareKey> {
    let mut parts = payload.splitn(3, '/');
    let workspace = Uuid::parse_str(parts.next()?).ok()?;
    let agent = parts.next()?;
    let port = parts.next()?.parse().ok()?;
    Some(ShareKey::new(workspace, agent, port))
}

fn share_of(row: &postgres::Row) -> Result<Share, StoreError> {
    let bad = |what: &str| StoreError::Io(format!("a stored share has an invalid {what}"));
    let workspace: String = row.get(0);
    let port: i32 = row.get(2);
    let level: String = row.get(3);
    let protocol: String = row.get(4);
    let cors: String = row.get(5);
    Ok(Share {
        workspace_id: Uuid::parse_str(&workspace).map_err(|_| bad("workspace id"))?,
        agent_name: row.get(1),
        port: u16::try_from(port).map_err(|_| bad("port"))?,
        level: level.parse::<ShareLevel>().map_err(|()| bad("level"))?,
        protocol: protocol.parse::<Protocol>().map_err(|()| bad("protocol"))?,
        cors: cors.parse::<CorsMode>().map_err(|()| bad("CORS mode"))?,
    })
}

const SELECT: &str =
    "SELECT workspace_id, agent_name, port, level, protocol, cors FROM portshare_shares";

fn load_all(client: &mut Client) -> Result<Vec<Share>, StoreError> {
    client
        .query(SELECT, &[])
        .map_err(pg)?
        .iter()
        .map(share_of)
        .collect()
}

impl PgStore {
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let fail = |err: StoreError| StoreError::Open {
            path: redact(url),
            reason: err.to_string(),
        };
        let mut client = connect(url).map_err(fail)?;
        migrate(&mut client).map_err(fail)?;
        Ok(PgStore {
            url: url.to_string(),
            client: Mutex::new(Some(client)),
        })
    }

    /// Runs `work` on the connection, reconnecting first if the last one
    /// failed; a failure drops the connection.
    fn with_client<T>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self
            .client
            .lock()
            .map_err(|_| StoreError::Io("the store's lock was poisoned".to_string()))?;
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(connect(&self.url)?);
        }
        let Some(client) = slot.as_mut() else {
            return Err(StoreError::Io("no connection".to_string()));
        };
        let result = work(client);
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

/// The URL without its password, for messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(pg)?;
    // Replicas starting together migrate one at a time.
    tx.execute("SELECT pg_advisory_xact_lock(7362615)", &[])
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS portshare_schema (version INTEGER NOT NULL)")
        .map_err(pg)?;
    let version: i32 = tx
        .query_opt("SELECT version FROM portshare_schema", &[])
        .map_err(pg)?
        .map_or(0, |row| row.get(0));
    let known = MIGRATIONS.len() as i32;
    if version > known {
        return Err(StoreError::Io(format!(
            "schema version {version} is newer than this portshare understands ({known})"
        )));
    }
    for step in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
        tx.batch_execute(step).map_err(pg)?;
    }
    tx.execute("DELETE FROM portshare_schema", &[])
        .map_err(pg)?;
    tx.execute(
        "INSERT INTO portshare_schema (version) VALUES ($1)",
        &[&known],
    )
    .map_err(pg)?;
    tx.commit().map_err(pg)
}

impl Store for PgStore {
    fn load(&self) -> Result<Vec<Share>, StoreError> {
        self.with_client(load_all)
    }

    fn get(&self, key: &ShareKey) -> Result<Option<Share>, StoreError> {
        self.with_client(|client| {
            client
                .query_opt(
                    &format!("{SELECT} WHERE workspace_id = $1 AND agent = $2 AND port = $3"),
                    &[
                        &key.workspace_id.to_string(),
                        &&*key.agent,
                        &i32::from(key.port),
                    ],
                )
                .map_err(pg)?
                .map(|row| share_of(&row))
                .transpose()
        })
    }

    fn upsert(&self, share: &Share) -> Result<(), StoreError> {
        let key = share.key();
        self.with_client(|client| {
            let mut tx = client.transaction().map_err(pg)?;
            tx.execute(
                "INSERT INTO portshare_shares (workspace_id, agent, agent_name, port, level, protocol, cors)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (workspace_id, agent, port) DO UPDATE SET
                   agent_name = excluded.agent_name, level = excluded.level,
                   protocol = excluded.protocol, cors = excluded.cors",
                &[
                    &share.workspace_id.to_string(),
                    &&*key.agent,
                    &share.agent_name,
                    &i32::from(share.port),
                    &share.level.as_str(),
                    &super::protocol_name(share.protocol),
                    &super::cors_name(share.cors),
                ],
            )
            .map_err(pg)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &key_payload(&key)])
                .map_err(pg)?;
            tx.commit().map_err(pg)
        })
    }

    fn delete(&self, key: &ShareKey) -> Result<bool, StoreError> {
        self.with_client(|client| {
            let mut tx = client.transaction().map_err(pg)?;
            let deleted = tx
                .execute(
                    "DELETE FROM portshare_shares WHERE workspace_id = $1 AND agent = $2 AND port = $3",
                    &[&key.workspace_id.to_string(), &&*key.agent, &i32::from(key.port)],
                )
                .map_err(pg)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &key_payload(key)])
                .map_err(pg)?;
            tx.commit().map_err(pg)?;
            Ok(deleted > 0)
        })
    }

    fn subscribe(&self, on_change: OnChange) {
        let url = self.url.clone();
        let spawned = std::thread::Builder::new()
            .name("portshare-pg-listen".to_string())
            .spawn(move || listen_forever(&url, &on_change));
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the PostgreSQL listener");
        }
    }
}

/// LISTENs, applies each notified key, and after any failure reconnects with
/// backoff and reloads the whole table first.
fn listen_forever(url: &str, on_change: &OnChange) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(url, on_change) {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(err) => {
                tracing::warn!(%err, retry_in = ?backoff, "PostgreSQL listener lost; serving the shares already loaded");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn listen_once(url: &str, on_change: &OnChange) -> Result<(), StoreError> {
    let mut listener = connect(url)?;
    listener
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(pg)?;
    // Listening first, then reloading: nothing committed in between is missed.
    on_change(Change::Reconnected)?;
    tracing::info!("PostgreSQL listener synchronised");
    let mut notifications = listener.notifications();
    let mut iter = notifications.blocking_iter();
    while let Some(notification) = iter.next().map_err(pg)? {
        if let Some(key) = parse_payload(notification.payload()) {
            on_change(Change::Touched(key))?;
        }
    }
    Err(StoreError::Io("the notification stream ended".to_string()))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_passwords_are_hidden() {
        let key = ShareKey::new(Uuid::from_u128(9), "My-Agent", 8080);
        assert_eq!(parse_payload(&key_payload(&key)), Some(key));
        assert_eq!(parse_payload("junk"), None);
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/portshare"),
            "postgres://app:***@db:5432/portshare"
        );
        assert_eq!(redact("postgres://db/portshare"), "postgres://db/portshare");
    }
}
