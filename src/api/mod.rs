//! The REST API: Coder's port-share endpoints and the health check.
//!
//! `GET|POST|DELETE /api/v2/workspaces/{workspace}/port-share` with Coder's
//! shapes, checks (in Coder's order), status codes and messages.

mod types;

use std::net::IpAddr;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::App;
use crate::config::{User, Workspace};
use crate::identity::{self, Caller};
use crate::respond::{self, ApiError, Body};
use crate::share::{CorsMode, Protocol, Share, ShareKey, ShareLevel};
use crate::store::StoreError;
use types::{DeleteRequest, ShareBody, ShareList, UpsertRequest};

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const NOT_FOUND_OR_HIDDEN: &str = "Resource not found or you do not have access to this resource";

/// `client` is the caller's address (for the brute-force guard).
pub async fn handle(app: &App, client: IpAddr, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let probe = match path {
        "/healthz" => Some(Probe::Health),
        "/readyz" => Some(Probe::Ready),
        "/metrics" if app.config.load().metrics_listen.is_none() => Some(Probe::Metrics),
        _ => None,
    };
    if let Some(probe) = probe {
        return serve_probe(app, probe, req.method());
    }
    let Some(raw_workspace) = path
        .strip_prefix("/api/v2/workspaces/")
        .and_then(|rest| rest.strip_suffix("/port-share"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
    else {
        return ApiError::new(StatusCode::NOT_FOUND, "Route not found.").into_response();
    };
    if !matches!(*req.method(), Method::GET | Method::POST | Method::DELETE) {
        return method_not_allowed("GET, POST, DELETE");
    }
    let raw_workspace = raw_workspace.to_string();
    let method = req.method().clone();
    let response = match port_share(app, client, req, &raw_workspace).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    app.metrics.record_api(&method, response.status().as_u16());
    response
}

/// The operational endpoints.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// `/healthz`: the process is alive.
    Health,
    /// `/readyz`: the config is loaded and the share table ready.
    Ready,
    /// `/metrics`: OpenMetrics text, which Prometheus scrapes.
    Metrics,
}

pub fn serve_probe(app: &App, probe: Probe, method: &Method) -> Response<Body> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return method_not_allowed("GET, HEAD");
    }
    match probe {
        Probe::Health => respond::text(StatusCode::OK, "ok\n"),
        // Config and shares are in memory before the listener accepts, so a
        // process that answers is ready.
        Probe::Ready => respond::text(StatusCode::OK, "ready\n"),
        Probe::Metrics => {
            let mut response = Response::new(respond::full(app.metrics.render(&app.shares)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response =
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.").into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

async fn port_share(
    app: &App,
    client: IpAddr,
    req: Request<Incoming>,
    raw_workspace: &str,
) -> Result<Response<Body>, ApiError> {
    let config = app.config.load_full();
    let identified = identity::api_caller(&config.tokens, req.headers(), req.uri().query());
    app.guard_tokens(&config, client, &identified)
        .map_err(ApiError::too_many_attempts)?;
    let Caller::User(user) = identified.caller else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "You must be signed in: no valid session token was sent.",
        )
        .detail(
            "Send it in the Coder-Session-Token header, the coder_session_token cookie or \
             query parameter, or Authorization: Bearer.",
        ));
    };
    let workspace_id = Uuid::parse_str(raw_workspace).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid UUID {raw_workspace:?}."),
        )
    })?;
    let workspace = config
        .workspace(workspace_id)
        .filter(|ws| ws.owner_id == user.id || user.site_admin)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND_OR_HIDDEN))?
        .clone();

    match *req.method() {
        Method::GET => {
            let shares = app
                .shares
                .list(workspace_id)
                .into_iter()
                .map(ShareBody::from)
                .collect();
            Ok(respond::json(StatusCode::OK, &ShareList { shares }))
        }
        Method::POST => {
            let share = decode_upsert(&read_body(req).await?, &workspace)?;
            let _one_at_a_time = app.writes.lock().await;
            let store = app.store.clone();
            let stored = share.clone();
            persist(move || store.upsert(&stored)).await?;
            let before = app.shares.upsert(share.clone()).map(|old| old.level);
            app.revoke();
            audit(&user, &share.key(), before, Some(share.level));
            Ok(respond::json(StatusCode::OK, &ShareBody::from(share)))
        }
        _ => {
            let key = decode_delete(&read_body(req).await?, workspace_id)?;
            let _one_at_a_time = app.writes.lock().await;
            let Some(key) = key else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "Port share not found.",
                ));
            };
            // The store decides whether the share existed: with replicas, this
            // one's table may not have caught up with another's upsert yet.
            let store = app.store.clone();
            let stored = key.clone();
            let in_store = persist(move || store.delete(&stored)).await?;
            let in_table = app.shares.remove(&key);
            if !in_store && in_table.is_none() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "Port share not found.",
                ));
            }
            app.revoke();
            audit(&user, &key, in_table.map(|share| share.level), None);
            Ok(Response::new(respond::empty()))
        }
    }
}

/// Runs a store write off the async threads; its failure is a 503 and the
/// change is not made.
async fn persist<T: Send + 'static>(
    write: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let unavailable = |detail: String| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The share store is unavailable; the change was not made.",
        )
        .detail(detail)
    };
    match tokio::task::spawn_blocking(write).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::error!(%err, "share store write failed");
            Err(unavailable(err.to_string()))
        }
        Err(err) => Err(unavailable(err.to_string())),
    }
}

/// One audit event per share change: who, which port, level before → after
/// (`none` for no share).
fn audit(actor: &User, key: &ShareKey, before: Option<ShareLevel>, after: Option<ShareLevel>) {
    tracing::info!(
        target: "portshare::audit",
        actor = %actor.id,
        actor_name = actor.username.as_str(),
        workspace = %key.workspace_id,
        agent = &*key.agent,
        port = key.port,
        before = before.map_or("none", ShareLevel::as_str),
        after = after.map_or("none", ShareLevel::as_str),
        "share changed"
    );
}

/// Decodes and checks a `POST` body for `workspace`: Coder's checks, in
/// Coder's order.
pub fn decode_upsert(body: &[u8], workspace: &Workspace) -> Result<Share, ApiError> {
    let body: UpsertRequest = decode_json(body)?;
    let level = body
        .share_level
        .parse::<ShareLevel>()
        .ok()
        .filter(|level| *level != ShareLevel::Owner)
        .ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "Port sharing level not allowed.")
                .on_field("share_level")
        })?;
    let port = u16::try_from(body.port)
        .ok()
        .filter(|port| *port >= crate::apphost::MIN_PORT)
        .ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "Port must be between 9 and 65535.")
                .on_field("port")
        })?;
    let protocol = match body.protocol.as_deref() {
        None => Protocol::Http,
        Some(raw) => raw.parse::<Protocol>().map_err(|()| {
            ApiError::new(StatusCode::BAD_REQUEST, "Port protocol not allowed.")
                .on_field("protocol")
        })?,
    };
    let cors = match body.cors.as_deref() {
        None => CorsMode::Managed,
        Some(raw) => raw.parse::<CorsMode>().map_err(|()| {
            ApiError::new(StatusCode::BAD_REQUEST, "CORS mode not allowed.")
                .detail("Use \"managed\" (the default) or \"passthru\".")
                .on_field("cors")
        })?,
    };
    if level > workspace.max_share_level {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "\"{level}\" sharing level is not allowed under max level \"{}\"",
                workspace.max_share_level
            ),
        ));
    }
    let agent = workspace
        .agent(&body.agent_name)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "Agent not found."))?;
    Ok(Share {
        workspace_id: workspace.id,
        agent_name: agent.name.clone(),
        port,
        level,
        protocol,
        cors,
    })
}

/// Decodes a `DELETE` body into the key it names; `None` when the port
/// cannot name any share.
pub fn decode_delete(body: &[u8], workspace_id: Uuid) -> Result<Option<ShareKey>, ApiError> {
    let body: DeleteRequest = decode_json(body)?;
    Ok(u16::try_from(body.port)
        .ok()
        .map(|port| ShareKey::new(workspace_id, &body.agent_name, port)))
}

/// Reads a request body of at most `MAX_BODY_BYTES`.
async fn read_body(req: Request<Incoming>) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large.")
            .detail(format!("The limit is {MAX_BODY_BYTES} bytes."))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) => Err(
            ApiError::new(StatusCode::BAD_REQUEST, "Request body could not be read.")
                .detail(err.to_string()),
        ),
    }
}

fn decode_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    let invalid = |detail: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "Request body must be valid JSON.").detail(detail)
    };
    // Only an object (or `null`, the zero value, as in Coder): serde would
    // otherwise also take an array of the fields in order.
    let start = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(start, Some(b'{') | Some(b'n')) {
        return Err(invalid("expected a JSON object".to_string()));
    }
    serde_json::from_slice::<Option<T>>(bytes)
        .map(Option::unwrap_or_default)
        .map_err(|err| invalid(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input the api_body fuzz target reported as slow (under load); it is
    /// refused as invalid JSON, at once.
    #[test]
    fn fuzzed_number_soup_is_invalid_json() {
        let body = b"\n\n\t\t\t\t\t\t\t\t\t\r\n \n\n {    \"\" \t\t\t\n:\n11111111111.11111111777777777777777777777777777777777777777777777777777777777771000001,111111\n\n\x00\x0011";
        let err = decode_json::<types::UpsertRequest>(body).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.message, "Request body must be valid JSON.");
    }
}
