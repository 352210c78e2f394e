//! Every response portshare writes itself: bodies, JSON, and the one mapping
//! from a failure to a status, a message and a format (JSON or HTML).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use serde::Serialize;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response portshare sends: its own, or an app's streamed.
pub type Body = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_body(status, "application/json", full(bytes)),
        Err(err) => {
            tracing::error!(%err, "could not encode a JSON response");
            with_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                full("internal error\n"),
            )
        }
    }
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    with_body(status, "text/plain; charset=utf-8", full(body))
}

/// One field that failed validation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Validation {
    pub field: &'static str,
    pub detail: String,
}

/// An error of the REST API, in Coder's shape:
/// `{"message", "detail"?, "validations"?}`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validations: Vec<Validation>,
    /// Sent as `Retry-After` (seconds).
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            detail: None,
            validations: Vec::new(),
            retry_after: None,
        }
    }

    /// `429` for a client that failed too many tokens.
    pub fn too_many_attempts(wait: Duration) -> ApiError {
        let seconds = retry_seconds(wait);
        ApiError {
            retry_after: Some(wait),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed sign-in attempts from this address.",
            )
            .detail(format!("Try again in {seconds} seconds."))
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a validation on `field` whose detail repeats the message.
    pub fn on_field(mut self, field: &'static str) -> ApiError {
        self.validations.push(Validation {
            field,
            detail: self.message.clone(),
        });
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let response = challenge_if_unauthorized(json(self.status, &self));
        with_retry_after(response, self.retry_after)
    }
}

/// Why a forwarded-port request was not relayed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadHost(#[from] crate::apphost::HostError),
    #[error("Invalid Host header")]
    InvalidHost,
    /// No valid session and the port is not public.
    #[error("Sign in to open this application")]
    SignInRequired,
    /// Signed in but not admitted, or no such app: the same answer, so that
    /// existence does not leak.
    #[error("Application Not Found")]
    NotFound,
    #[error("Bad Gateway")]
    Upstream(String),
    #[error("Too many failed sign-in attempts from this address.")]
    TooManyAttempts(Duration),
}

/// Whole seconds to wait, rounded up, at least one.
fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::BadHost(_) | AppError::InvalidHost => StatusCode::BAD_REQUEST,
            AppError::SignInRequired => StatusCode::UNAUTHORIZED,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            AppError::SignInRequired => Some(
                "This port is not public. Send a session token in the Coder-Session-Token header, \
                 or open it in a browser after signing in."
                    .to_string(),
            ),
            AppError::NotFound => {
                Some("The application does not exist or is not shared with you.".to_string())
            }
            AppError::Upstream(reason) => Some(reason.clone()),
            AppError::TooManyAttempts(wait) => {
                Some(format!("Try again in {} seconds.", retry_seconds(*wait)))
            }
            _ => None,
        }
    }

    /// The gRPC status code a gRPC client gets instead of the HTTP status.
    fn grpc_code(&self) -> u8 {
        match self {
            AppError::BadHost(_) | AppError::InvalidHost => 3, // INVALID_ARGUMENT
            AppError::SignInRequired => 16,                    // UNAUTHENTICATED
            AppError::NotFound => 5,                           // NOT_FOUND: existence does not leak
            AppError::Upstream(_) => 14,                       // UNAVAILABLE
            AppError::TooManyAttempts(_) => 8,                 // RESOURCE_EXHAUSTED
        }
    }

    /// JSON for API clients, a short HTML page when the client asked for HTML,
    /// a gRPC status for gRPC calls.
    pub fn into_response(self, format: Format) -> Response<Body> {
        let status = self.status();
        let message = self.to_string();
        if format == Format::Grpc {
            return grpc_status(self.grpc_code(), &message);
        }
        let retry_after = match self {
            AppError::TooManyAttempts(wait) => Some(wait),
            _ => None,
        };
        let error = ApiError {
            status,
            message,
            detail: self.detail(),
            validations: Vec::new(),
            retry_after,
        };
        if format == Format::Json {
            return error.into_response();
        }
        let page = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{status_text}</title></head>\
             <body><h1>{message}</h1><p>{detail}</p><hr><p>portshare</p></body></html>\n",
            status_text = status.canonical_reason().unwrap_or("Error"),
            message = html_escape(&error.message),
            detail = error.detail.as_deref().map(html_escape).unwrap_or_default(),
        );
        let response =
            challenge_if_unauthorized(with_body(status, "text/html; charset=utf-8", full(page)));
        with_retry_after(response, retry_after)
    }
}

fn with_retry_after(mut response: Response<Body>, wait: Option<Duration>) -> Response<Body> {
    if let Some(wait) = wait {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_seconds(wait)));
    }
    response
}

/// A 401 names the scheme that would have worked (RFC 9110, section 15.5.2).
fn challenge_if_unauthorized(mut response: Response<Body>) -> Response<Body> {
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Coder-Session-Token realm=\"portshare\""),
        );
    }
    response
}

/// How a client wants portshare's own errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
    /// A gRPC call: errors are gRPC statuses in a trailers-only response.
    Grpc,
}

impl Format {
    pub fn of(headers: &HeaderMap) -> Format {
        if is_grpc(headers) {
            Format::Grpc
        } else if wants_html(headers) {
            Format::Html
        } else {
            Format::Json
        }
    }
}

/// A gRPC request: `content-type: application/grpc` or `application/grpc+…`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// A trailers-only gRPC answer: HTTP 200 whose headers carry the status.
fn grpc_status(code: u8, message: &str) -> Response<Body> {
    let mut response = with_body(StatusCode::OK, "application/grpc", empty());
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    // grpc-message is percent-encoded outside printable ASCII (gRPC over HTTP/2).
    let mut encoded = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert("grpc-message", value);
    }
    response
}

/// True when the client listed `text/html` in `Accept`.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
