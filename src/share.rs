//! Shares: who may open one forwarded port, and the in-memory table of them.
//!
//! The table is the only thing the request path reads. It does no I/O; the API
//! layer writes it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who may open a port. Declared from the narrowest to the widest audience, so
/// `Ord` follows the audience: `Owner < Organization < Authenticated < Public`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareLevel {
    Owner,
    Organization,
    Authenticated,
    Public,
}

impl ShareLevel {
    pub const ALL: [ShareLevel; 4] = [
        ShareLevel::Owner,
        ShareLevel::Organization,
        ShareLevel::Authenticated,
        ShareLevel::Public,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShareLevel::Owner => "owner",
            ShareLevel::Organization => "organization",
            ShareLevel::Authenticated => "authenticated",
            ShareLevel::Public => "public",
        }
    }

    /// The level in force under a workspace's maximum: the narrower of the two.
    pub fn capped_at(self, max: ShareLevel) -> ShareLevel {
        self.min(max)
    }
}

impl fmt::Display for ShareLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShareLevel {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ShareLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or(())
    }
}

/// How portshare speaks to the app on the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Https,
}

impl FromStr for Protocol {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "http" => Ok(Protocol::Http),
            "https" => Ok(Protocol::Https),
            _ => Err(()),
        }
    }
}

/// Who answers cross-origin requests to a shared port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorsMode {
    /// portshare answers preflights itself, allows the forwarded ports of the
    /// same owner (with credentials) and strips the app's own CORS headers.
    #[default]
    Managed,
    /// Preflights go to the app unauthenticated and the app's CORS headers
    /// pass through untouched.
    Passthru,
}

impl FromStr for CorsMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "managed" => Ok(CorsMode::Managed),
            "passthru" => Ok(CorsMode::Passthru),
            _ => Err(()),
        }
    }
}

/// What a share sets for its port, as the request path reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRule {
    pub level: ShareLevel,
    pub cors: CorsMode,
}

/// The identity of a share: protocol and level are not part of it.
///
/// `agent` is the agent name lowercased, because hostnames are case-insensitive
/// and an agent is reached through one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareKey {
    pub workspace_id: Uuid,
    pub agent: Arc<str>,
    pub port: u16,
}

impl ShareKey {
    pub fn new(workspace_id: Uuid, agent_name: &str, port: u16) -> Self {
        ShareKey {
            workspace_id,
            agent: Arc::from(agent_name.to_ascii_lowercase()),
            port,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub workspace_id: Uuid,
    /// The agent name as the workspace spells it.
    pub agent_name: String,
    pub port: u16,
    pub level: ShareLevel,
    pub protocol: Protocol,
    pub cors: CorsMode,
}

impl Share {
    pub fn key(&self) -> ShareKey {
        ShareKey::new(self.workspace_id, &self.agent_name, self.port)
    }
}

/// Every share, keyed by `(workspace, agent, port)`.
#[derive(Debug, Default)]
pub struct ShareTable {
    shares: DashMap<ShareKey, Share>,
}

impl ShareTable {
    pub fn new() -> Self {
        ShareTable::default()
    }

    /// The level set for a port; `None` when the port has no share.
    pub fn level(&self, key: &ShareKey) -> Option<ShareLevel> {
        self.rule(key).map(|rule| rule.level)
    }

    /// Level and CORS mode of a port; `None` when the port has no share.
    pub fn rule(&self, key: &ShareKey) -> Option<ShareRule> {
        self.shares.get(key).map(|share| ShareRule {
            level: share.level,
            cors: share.cors,
        })
    }

    /// Inserts or replaces the share with this key; returns the one it replaced.
    pub fn upsert(&self, share: Share) -> Option<Share> {
        self.shares.insert(share.key(), share)
    }

    pub fn remove(&self, key: &ShareKey) -> Option<Share> {
        self.shares.remove(key).map(|(_, share)| share)
    }

    /// The shares of one workspace, sorted by port, then agent name.
    pub fn list(&self, workspace_id: Uuid) -> Vec<Share> {
        let mut shares: Vec<Share> = self
            .shares
            .iter()
            .filter(|entry| entry.key().workspace_id == workspace_id)
            .map(|entry| entry.value().clone())
            .collect();
        shares.sort_by(|a, b| {
            a.port
                .cmp(&b.port)
                .then_with(|| a.agent_name.cmp(&b.agent_name))
        });
        shares
    }

    pub fn len(&self) -> usize {
        self.shares.len()
    }

    /// Makes the table hold exactly `shares`.
    pub fn replace_all(&self, shares: Vec<Share>) {
        let keep: std::collections::HashSet<ShareKey> = shares.iter().map(Share::key).collect();
        self.shares.retain(|key, _| keep.contains(key));
        for share in shares {
            self.upsert(share);
        }
    }

    /// How many shares there are of each level, in `ShareLevel::ALL` order.
    pub fn count_by_level(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for entry in self.shares.iter() {
            counts[entry.value().level as usize] += 1;
        }
        counts
    }

    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(agent: &str, port: u16, level: ShareLevel) -> Share {
        Share {
            workspace_id: Uuid::nil(),
            agent_name: agent.to_string(),
            port,
            level,
            protocol: Protocol::Http,
            cors: CorsMode::Managed,
        }
    }

    #[test]
    fn levels_order_by_audience() {
        assert!(ShareLevel::Owner < ShareLevel::Organization);
        assert!(ShareLevel::Organization < ShareLevel::Authenticated);
        assert!(ShareLevel::Authenticated < ShareLevel::Public);
        assert_eq!(
            ShareLevel::Public.capped_at(ShareLevel::Organization),
            ShareLevel::Organization
        );
        assert_eq!(
            ShareLevel::Organization.capped_at(ShareLevel::Public),
            ShareLevel::Organization
        );
    }

    #[test]
    fn level_names_round_trip() {
        for level in ShareLevel::ALL {
            assert_eq!(level.as_str().parse::<ShareLevel>(), Ok(level));
        }
        assert_eq!("Public".parse::<ShareLevel>(), Err(()));
    }

    #[test]
    fn upsert_replaces_same_key_whatever_the_protocol_or_case() {
        let table = ShareTable::new();
        assert_eq!(table.upsert(share("main", 8080, ShareLevel::Public)), None);
        let mut https = share("MAIN", 8080, ShareLevel::Organization);
        https.protocol = Protocol::Https;
        let replaced = table.upsert(https);
        assert_eq!(replaced.map(|s| s.level), Some(ShareLevel::Public));
        assert_eq!(table.len(), 1);
        assert_eq!(
            table.level(&ShareKey::new(Uuid::nil(), "main", 8080)),
            Some(ShareLevel::Organization)
        );
    }

    #[test]
    fn list_sorts_by_port_then_agent() {
        let table = ShareTable::new();
        table.upsert(share("b", 9000, ShareLevel::Public));
        table.upsert(share("b", 8000, ShareLevel::Public));
        table.upsert(share("a", 9000, ShareLevel::Public));
        let order: Vec<(u16, String)> = table
            .list(Uuid::nil())
            .into_iter()
            .map(|s| (s.port, s.agent_name))
            .collect();
        assert_eq!(
            order,
            vec![
                (8000, "b".to_string()),
                (9000, "a".to_string()),
                (9000, "b".to_string())
            ]
        );
        assert!(table.list(Uuid::from_u128(1)).is_empty());
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        #[derive(Debug, Clone)]
        enum Op {
            Upsert(&'static str, u16, ShareLevel),
            Remove(&'static str, u16),
        }

        fn op() -> impl Strategy<Value = Op> {
            let agent = prop::sample::select(vec!["main", "MAIN", "Main", "web"]);
            let level = prop::sample::select(ShareLevel::ALL.to_vec());
            prop_oneof![
                (agent.clone(), 9u16..13, level).prop_map(|(a, p, l)| Op::Upsert(a, p, l)),
                (agent, 9u16..13).prop_map(|(a, p)| Op::Remove(a, p)),
            ]
        }

        proptest! {
            /// The table behaves like a map keyed by (lowercased agent, port).
            #[test]
            fn table_matches_a_model_map(ops in prop::collection::vec(op(), 0..60)) {
                let table = ShareTable::new();
                let mut model: BTreeMap<(String, u16), ShareLevel> = BTreeMap::new();
                for op in ops {
                    match op {
                        Op::Upsert(agent, port, level) => {
                            let replaced = table.upsert(share(agent, port, level)).map(|s| s.level);
                            let expected = model.insert((agent.to_ascii_lowercase(), port), level);
                            prop_assert_eq!(replaced, expected);
                        }
                        Op::Remove(agent, port) => {
                            let removed = table.remove(&ShareKey::new(Uuid::nil(), agent, port)).map(|s| s.level);
                            let expected = model.remove(&(agent.to_ascii_lowercase(), port));
                            prop_assert_eq!(removed, expected);
                        }
                    }
                    prop_assert_eq!(table.len(), model.len());
                    for ((agent, port), level) in &model {
                        prop_assert_eq!(table.level(&ShareKey::new(Uuid::nil(), agent, *port)), Some(*level));
                    }
                    let listed: Vec<u16> = table.list(Uuid::nil()).iter().map(|s| s.port).collect();
                    let mut sorted = listed.clone();
                    sorted.sort_unstable();
                    prop_assert_eq!(listed, sorted);
                }
            }
        }
    }
}
