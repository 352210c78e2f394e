//! What is open right now: every relayed exchange (request and response
//! bodies, upgraded connections) and every keep-alive connection that last
//! carried an admitted forwarded-port request, with the caller and port it was
//! admitted for.
//!
//! After any change of rules (a share upserted or deleted, a config reload)
//! `sweep` runs the access decision again for each entry and cancels those the
//! new rules no longer admit. Cancelling ends a response body with an error
//! (HTTP/1: the connection closes; HTTP/2: the stream is reset), sends a
//! WebSocket close frame then closes an upgraded connection, and closes an
//! idle keep-alive connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::access::{self, Decision};
use crate::config::Config;
use crate::identity::{Caller, TokenHash};
use crate::share::{ShareKey, ShareTable};

/// Who was admitted to which port.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The token that identified the caller (`None`: anonymous).
    pub token: Option<TokenHash>,
    pub user_id: Option<Uuid>,
    pub key: ShareKey,
}

impl Admission {
    /// Would the rules in force admit this caller to this port now? The
    /// caller is looked up again: a removed token or user is anonymous.
    pub fn still_admitted(&self, config: &Config, shares: &ShareTable) -> bool {
        let Some(workspace) = config.workspace(self.key.workspace_id) else {
            return false;
        };
        if workspace.agent(&self.key.agent).is_none() {
            return false;
        }
        let caller = match &self.token {
            None => Caller::Anonymous,
            Some(hash) => match config.tokens.user_for_hash(hash) {
                Some(user) if Some(user.id) == self.user_id => Caller::User(user.clone()),
                _ => Caller::Anonymous,
            },
        };
        access::decide(shares.level(&self.key), &caller, workspace) == Decision::Allow
    }
}

#[derive(Debug, Default)]
pub struct LiveSet {
    next_id: AtomicU64,
    entries: DashMap<u64, (Admission, CancellationToken)>,
}

/// Keeps an entry registered; dropping it unregisters.
#[derive(Debug)]
pub struct LiveHandle {
    set: Arc<LiveSet>,
    id: u64,
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        self.set.entries.remove(&self.id);
    }
}

impl LiveSet {
    /// Registers `admission`; `cancel` fires if the rules stop admitting it.
    pub fn register(
        self: &Arc<Self>,
        admission: Admission,
        cancel: CancellationToken,
    ) -> LiveHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.entries.insert(id, (admission, cancel));
        LiveHandle {
            set: self.clone(),
            id,
        }
    }

    /// Cancels every entry the rules in force no longer admit; returns how many.
    pub fn sweep(&self, config: &Config, shares: &ShareTable) -> usize {
        let mut revoked = 0;
        for entry in self.entries.iter() {
            let (admission, cancel) = entry.value();
            if !cancel.is_cancelled() && !admission.still_admitted(config, shares) {
                cancel.cancel();
                revoked += 1;
            }
        }
        revoked
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One client connection's last admission: if the rules stop admitting it,
/// `close` fires and the connection is closed before its next request.
#[derive(Debug, Default)]
pub struct ConnWatch {
    pub close: CancellationToken,
    last: std::sync::Mutex<Option<(Admission, LiveHandle)>>,
}

impl ConnWatch {
    /// Records that this connection carried a request admitted as `admission`.
    pub fn admitted(&self, live: &Arc<LiveSet>, admission: &Admission) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let same = last.as_ref().is_some_and(|(previous, _)| {
            previous.key == admission.key && previous.token == admission.token
        });
        if !same {
            let handle = live.register(admission.clone(), self.close.clone());
            *last = Some((admission.clone(), handle));
        }
    }
}
