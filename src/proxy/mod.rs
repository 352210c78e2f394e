//! Forwarded ports: parse the host, identify the caller, decide, relay.
//!
//! Phases of one request, in order:
//! 1. parse `[prefix---]port[s]--agent--workspace--user` (400 if it does not);
//! 2. identify the caller from portshare's own credentials (never `Authorization`);
//! 3. the browser hand-off: a navigation carrying a valid `?coder_session_token`
//!    is redirected to the same URL with the token moved into a host-only cookie;
//! 4. resolve user, workspace and agent, read the port's share, decide;
//! 5. strip what portshare consumed, add forwarding headers, relay the request
//!    and its body as a stream, and splice upgraded connections.

mod cors;
pub mod headers;
mod revocable;
mod splice;
mod upstream;

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use base64::Engine;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::App;
use crate::access::{self, Decision, Reason};
use crate::apphost::{AppHost, parse_subdomain};
use crate::config::{Agent, Config, Workspace};
use crate::identity::{self, APP_COOKIE, Caller};
use crate::live::{Admission, ConnWatch, LiveHandle};
use crate::respond::{self, AppError, Body, Format};
use crate::share::{CorsMode, ShareKey, ShareLevel, ShareRule};
use revocable::Revocable;
use uuid::Uuid;

pub use headers::is_upgrade;

pub use upstream::{CaBundleError, UpstreamClient, clients as upstream_clients};

/// `scheme://host:port` of the app on `port` of `agent`: HTTPS for ports
/// with the `s` suffix.
fn app_origin(agent: &Agent, host: &AppHost<'_>) -> String {
    let scheme = if host.https { "https" } else { "http" };
    format!("{scheme}://{}:{}", agent.upstream_host, host.port)
}

/// What the router knows about a request to a forwarded port.
pub struct Target<'a> {
    /// The subdomain under the wildcard, lowercased.
    pub subdomain: &'a str,
    /// The authority as the client sent it (for `Host` and redirects).
    pub authority: &'a str,
    pub peer: SocketAddr,
    /// The caller's address: the peer, or the client a trusted proxy names.
    pub client: IpAddr,
    /// Whether the peer is a trusted proxy (its `X-Forwarded-*` are kept).
    pub via_trusted_proxy: bool,
    /// `"http"` or `"https"`: how the client reached portshare.
    pub scheme: &'static str,
    /// The client connection the request came on.
    pub conn: &'a ConnWatch,
}

/// What one forwarded request came to: the access log's and the metrics'
/// classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Relayed to the app.
    Allowed,
    /// Not signed in, and the port is not public (401 or a sign-in redirect).
    DeniedAnonymous,
    /// Signed in but not admitted, or no such app (404).
    DeniedForbidden,
    /// Malformed host or request (400).
    #[default]
    BadRequest,
    /// The app could not be reached (502).
    UpstreamError,
    /// Too many failed tokens from the client's address (429).
    RateLimited,
    /// A CORS preflight, answered without the access check.
    Preflight,
    /// The browser hand-off: token moved into the app cookie (303).
    HandOff,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Allowed,
        Outcome::DeniedAnonymous,
        Outcome::DeniedForbidden,
        Outcome::BadRequest,
        Outcome::UpstreamError,
        Outcome::RateLimited,
        Outcome::Preflight,
        Outcome::HandOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::DeniedAnonymous => "denied-anonymous",
            Outcome::DeniedForbidden => "denied-forbidden",
            Outcome::BadRequest => "bad-request",
            Outcome::UpstreamError => "upstream-error",
            Outcome::RateLimited => "rate-limited",
            Outcome::Preflight => "preflight",
            Outcome::HandOff => "hand-off",
        }
    }

    fn of_error(err: &AppError) -> Outcome {
        match err {
            AppError::BadHost(_) | AppError::InvalidHost => Outcome::BadRequest,
            AppError::SignInRequired => Outcome::DeniedAnonymous,
            AppError::NotFound => Outcome::DeniedForbidden,
            AppError::Upstream(_) => Outcome::UpstreamError,
            AppError::TooManyAttempts(_) => Outcome::RateLimited,
        }
    }
}

/// Filled in while a request is handled; read by the access log.
#[derive(Debug, Default)]
pub struct Trail {
    pub outcome: Outcome,
    /// The level in force for the port, when the port exists.
    pub level: Option<ShareLevel>,
    pub caller: Option<Uuid>,
}

/// Handles one forwarded-port request and writes its access-log event.
pub async fn handle(app: &App, target: Target<'_>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let mut trail = Trail::default();
    let response = forward(app, &target, req, &mut trail).await;
    let elapsed = started.elapsed();
    tracing::info!(
        target: "portshare::access",
        host = target.authority,
        method = %method,
        status = response.status().as_u16(),
        share_level = trail.level.map_or("none", ShareLevel::as_str),
        decision = trail.outcome.as_str(),
        caller = %trail.caller.map_or_else(|| "anonymous".to_string(), |id| id.to_string()),
        duration_us = elapsed.as_micros() as u64,
        "forwarded request"
    );
    app.metrics.record_forwarded(trail.outcome, trail.level);
    response
}

async fn forward(
    app: &App,
    target: &Target<'_>,
    req: Request<Incoming>,
    trail: &mut Trail,
) -> Response<Body> {
    let config = app.config.load_full();
    let format = Format::of(req.headers());
    let host = match parse_subdomain(target.subdomain) {
        Ok(host) => host,
        Err(err) => return AppError::from(err).into_response(format),
    };
    let origin = cors::trusted_origin(&config.wildcard, req.headers(), host.user);
    let resolved = config
        .workspace_by_owner(host.user, host.workspace)
        .and_then(|ws| ws.agent(host.agent).map(|agent| (ws.as_ref(), agent)));
    let key = resolved.map(|(workspace, agent)| ShareKey {
        workspace_id: workspace.id,
        agent: agent.key.clone(),
        port: host.port,
    });
    let rule = key.as_ref().and_then(|key| app.shares.rule(key));
    let cors_mode = rule.map_or(CorsMode::Managed, |rule| rule.cors);
    trail.level = resolved.map(|(workspace, _)| {
        rule.map_or(ShareLevel::Owner, |rule| rule.level)
            .capped_at(workspace.max_share_level)
    });

    if cors::is_preflight(req.method(), req.headers()) {
        trail.outcome = Outcome::Preflight;
        // Preflights carry no credentials: they are answered without the
        // access check, by portshare (managed) or by the app (passthru).
        return match (cors_mode, resolved) {
            (CorsMode::Passthru, Some((_, agent))) => {
                let upstream = app_origin(agent, &host);
                relay(app, target, upstream, req, None)
                    .await
                    .unwrap_or_else(|err| err.into_response(format))
            }
            _ => cors::preflight(origin, req.headers()),
        };
    }

    let checking = Instant::now();
    let admitted = admit(
        app, &config, target, &req, &host, resolved, key, rule, trail,
    );
    app.metrics.record_access_check(checking.elapsed());
    let outcome = match admitted {
        Ok(Admitted::Relay {
            upstream,
            admission,
        }) => {
            // Registered first, then checked against the rules in force now:
            // a change racing with this request is either seen here or sees
            // the registration in its sweep.
            let revoked = CancellationToken::new();
            let live = Arc::new(app.live.register(admission.clone(), revoked.clone()));
            if admission.still_admitted(&app.config.load(), &app.shares) {
                target.conn.admitted(&app.live, &admission);
                trail.outcome = Outcome::Allowed;
                relay(app, target, upstream, req, Some((live, revoked)))
                    .await
                    .map(|mut response| {
                        if cors_mode == CorsMode::Managed {
                            cors::manage(response.headers_mut(), origin.clone());
                        }
                        response
                    })
            } else if admission.token.is_some() {
                Err(AppError::NotFound)
            } else {
                Err(AppError::SignInRequired)
            }
        }
        Ok(Admitted::Respond(response)) => Ok(response),
        Err(err) => Err(err),
    };
    outcome.unwrap_or_else(|err| {
        trail.outcome = Outcome::of_error(&err);
        let mut response = err.into_response(format);
        cors::expose(response.headers_mut(), origin);
        response
    })
}

enum Admitted {
    Relay {
        upstream: String,
        admission: Admission,
    },
    Respond(Response<Body>),
}

/// Identifies the caller and decides. `resolved` is the workspace and agent
/// the host names, if they exist; `rule` the port's share, if any.
#[allow(clippy::too_many_arguments)]
fn admit(
    app: &App,
    config: &Config,
    target: &Target<'_>,
    req: &Request<Incoming>,
    host: &AppHost<'_>,
    resolved: Option<(&Workspace, &Agent)>,
    key: Option<ShareKey>,
    rule: Option<ShareRule>,
    trail: &mut Trail,
) -> Result<Admitted, AppError> {
    let identified = identity::app_caller(&config.tokens, req.headers(), req.uri().query());
    app.guard_tokens(config, target.client, &identified)
        .map_err(AppError::TooManyAttempts)?;
    let caller = identified.caller;
    trail.caller = caller.user().map(|user| user.id);

    if let Caller::User(_) = caller
        && is_navigation(req)
        && let Some(response) = hand_off(config, target, req)
    {
        trail.outcome = Outcome::HandOff;
        return Ok(Admitted::Respond(response));
    }

    let (Some((workspace, agent)), Some(key)) = (resolved, key) else {
        // An anonymous caller learns nothing about which names exist.
        return Err(match caller {
            Caller::Anonymous => AppError::SignInRequired,
            Caller::User(_) => AppError::NotFound,
        });
    };
    match access::decide(rule.map(|rule| rule.level), &caller, workspace) {
        Decision::Allow => {}
        Decision::Deny(Reason::NotShared) => return Err(AppError::NotFound),
        Decision::Deny(Reason::SignInRequired) => {
            return match sign_in_redirect(config, target, req) {
                Some(response) => {
                    trail.outcome = Outcome::DeniedAnonymous;
                    Ok(Admitted::Respond(response))
                }
                None => Err(AppError::SignInRequired),
            };
        }
    }
    Ok(Admitted::Relay {
        upstream: app_origin(agent, host),
        admission: Admission {
            token: identified.token,
            user_id: caller.user().map(|user| user.id),
            key,
        },
    })
}

/// A WebSocket over HTTP/2 (RFC 8441): an extended CONNECT whose
/// `:protocol` is `websocket`.
fn is_h2_websocket(req: &Request<Incoming>) -> bool {
    req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|protocol| protocol.as_str().eq_ignore_ascii_case("websocket"))
}

/// A top-level browser navigation: `GET` that accepts HTML and is not an upgrade.
fn is_navigation(req: &Request<Incoming>) -> bool {
    req.method() == Method::GET && respond::wants_html(req.headers()) && !is_upgrade(req.headers())
}

/// Cookie values are limited to RFC 6265 cookie-octets; a token outside them
/// still authenticates the request but is not put in a cookie.
fn is_cookie_safe(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// `303` to the same URL without the token, setting the app cookie.
fn hand_off(
    config: &Config,
    target: &Target<'_>,
    req: &Request<Incoming>,
) -> Option<Response<Body>> {
    let token = identity::query_token(&config.tokens, req.uri().query())?;
    if !is_cookie_safe(&token) {
        return None;
    }
    let path = req.uri().path();
    let location = match req.uri().query().and_then(headers::strip_token_query) {
        Some(rest) => format!("{path}?{rest}"),
        None => path.to_string(),
    };
    // Secure when the browser reached portshare over TLS, so the cookie
    // never travels in clear text afterwards.
    let secure = if target.scheme == "https" {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{APP_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}");
    let mut response = Response::new(respond::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).ok()?);
    headers.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).ok()?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(response)
}

/// For an anonymous browser navigation when `sign_in_url` is set: `303` to it
/// with `redirect_uri` set to the URL that was asked for.
fn sign_in_redirect(
    config: &Config,
    target: &Target<'_>,
    req: &Request<Incoming>,
) -> Option<Response<Body>> {
    let sign_in = config.sign_in_url.as_deref()?;
    if !is_navigation(req) {
        return None;
    }
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let original = format!("{}://{}{path_and_query}", target.scheme, target.authority);
    let encoded: String = form_urlencoded::byte_serialize(original.as_bytes()).collect();
    let separator = if sign_in.contains('?') { '&' } else { '?' };
    let location = format!("{sign_in}{separator}redirect_uri={encoded}");
    let mut response = Response::new(respond::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&location).ok()?);
    Some(response)
}

async fn relay(
    app: &App,
    target: &Target<'_>,
    upstream: String,
    mut req: Request<Incoming>,
    admitted: Option<(Arc<LiveHandle>, CancellationToken)>,
) -> Result<Response<Body>, AppError> {
    // An unauthenticated relay (a passthru preflight) has nothing to revoke.
    let (live, revoked) = match admitted {
        Some((live, revoked)) => (Some(live), revoked),
        None => (None, CancellationToken::new()),
    };
    let client_version = req.version();
    let h2_websocket = is_h2_websocket(&req);
    let upgrade = h2_websocket || is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let path = req.uri().path();
    let path_and_query = match req.uri().query() {
        Some(query) => match headers::strip_token_query(query) {
            Some(rest) => format!("{path}?{rest}"),
            None => path.to_string(),
        },
        None => path.to_string(),
    };
    let uri: Uri = format!("{upstream}{path_and_query}")
        .parse()
        .map_err(|err| AppError::Upstream(format!("invalid upstream URL: {err}")))?;

    let grpc = respond::is_grpc(req.headers());
    let (mut parts, body) = req.into_parts();
    parts.uri = uri;
    // gRPC needs HTTP/2 to the app (trailers, streams both ways); the rest
    // goes as HTTP/1.1, or HTTP/2 where an HTTPS app offers it.
    parts.version = if grpc {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let headers = &mut parts.headers;
    headers::strip_hop_by_hop(headers);
    headers::strip_credentials(headers);
    if h2_websocket {
        // The app gets the HTTP/1.1 handshake the client would have sent.
        parts.method = Method::GET;
        parts.extensions.remove::<hyper::ext::Protocol>();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let key = base64::engine::general_purpose::STANDARD.encode(Uuid::new_v4().as_bytes());
        if let Ok(key) = HeaderValue::from_str(&key) {
            headers.insert(header::SEC_WEBSOCKET_KEY, key);
        }
        headers
            .entry(header::SEC_WEBSOCKET_VERSION)
            .or_insert(HeaderValue::from_static("13"));
    }
    if !headers.contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(target.authority)
    {
        headers.insert(header::HOST, host);
    }
    headers::set_forwarded(
        headers,
        target.peer.ip(),
        target.via_trusted_proxy,
        target.scheme,
        target.authority,
    );

    let sent = Instant::now();
    let client = if grpc { &app.grpc_client } else { &app.client };
    let mut response = client
        .request(Request::from_parts(
            parts,
            if h2_websocket {
                // The CONNECT stream becomes the WebSocket; the app's
                // handshake request has no body.
                Revocable::empty(revoked.clone().cancelled_owned(), live.clone())
            } else {
                Revocable::new(body, revoked.clone().cancelled_owned(), live.clone())
            },
        ))
        .await
        .map_err(|err| AppError::Upstream(describe_upstream_error(&upstream, &err)))?;
    app.metrics.record_upstream(sent.elapsed());

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(AppError::Upstream(
                "the app switched protocols without being asked to".to_string(),
            ));
        };
        let app_upgrade = hyper::upgrade::on(&mut response);
        let websocket = response
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
        let (live, revoked) = (live.clone(), revoked.clone());
        let upgraded = app.metrics.upgrade_started();
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, app_upgrade) {
                Ok((client, app)) => splice::splice(client, app, websocket, revoked).await,
                Err(err) => tracing::debug!(%err, "upgrade did not complete"),
            }
            drop((live, upgraded));
        });
    }
    let (mut parts, body) = response.into_parts();
    // The client's protocol, not the app's: an HTTP/1.0 app must not turn
    // the reply into an HTTP/1.0 one.
    parts.version = client_version;
    headers::strip_hop_by_hop(&mut parts.headers);
    if h2_websocket && parts.status == StatusCode::SWITCHING_PROTOCOLS {
        // Over HTTP/2 an accepted WebSocket is a 200 to the CONNECT.
        parts.status = StatusCode::OK;
        for name in [
            header::CONNECTION,
            header::UPGRADE,
            header::SEC_WEBSOCKET_ACCEPT,
        ] {
            parts.headers.remove(name);
        }
    }
    let body = Revocable::new(body, revoked.cancelled_owned(), live);
    Ok(Response::from_parts(parts, body.boxed()))
}

fn describe_upstream_error(upstream: &str, err: &hyper_util::client::legacy::Error) -> String {
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    format!("could not reach the app at {upstream}: {reason}")
}
