//! Request and response bodies of the share API, apart from the domain types
//! so that the wire format can follow Coder's without bending the model.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::share::{CorsMode, Protocol, Share, ShareLevel};

/// `POST` body. Every field is optional on the wire, as in Coder's Go client,
/// where a missing field is its zero value and fails the matching check.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UpsertRequest {
    pub agent_name: String,
    /// `i32` as in Coder: a number that does not fit is invalid JSON.
    pub port: i32,
    pub share_level: String,
    /// Absent (or null) means `http`.
    pub protocol: Option<String>,
    /// portshare's extension: `managed` (absent or null) or `passthru`.
    pub cors: Option<String>,
}

/// `DELETE` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteRequest {
    pub agent_name: String,
    pub port: i32,
}

#[derive(Debug, Serialize)]
pub struct ShareBody {
    pub workspace_id: Uuid,
    pub agent_name: String,
    pub port: u16,
    pub share_level: ShareLevel,
    pub protocol: Protocol,
    pub cors: CorsMode,
}

impl From<Share> for ShareBody {
    fn from(share: Share) -> ShareBody {
        ShareBody {
            workspace_id: share.workspace_id,
            agent_name: share.agent_name,
            port: share.port,
            share_level: share.level,
            protocol: share.protocol,
            cors: share.cors,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ShareList {
    pub shares: Vec<ShareBody>,
}
