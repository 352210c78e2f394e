//! CORS for forwarded ports.
//!
//! An origin is trusted when it is itself a forwarded port of the same owner
//! (the `user` part of both hostnames): a frontend on one port may call an
//! API on another with credentials. In `managed` mode portshare answers
//! preflights itself (no credentials needed, never a redirect) and replaces
//! the app's `Access-Control-*` headers with its own; in `passthru` mode the
//! app answers preflights and its headers pass untouched. Either way, a
//! denial portshare writes carries the headers a trusted origin needs to read
//! it, so a single-page app can tell "not signed in" from a network error.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};

use crate::apphost::{Wildcard, normalize_host, parse_subdomain};
use crate::respond::{self, Body};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// A preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The request's `Origin` when it is a forwarded port of `owner`.
pub fn trusted_origin(
    wildcard: &Wildcard,
    headers: &HeaderMap,
    owner: &str,
) -> Option<HeaderValue> {
    let value = headers.get(header::ORIGIN)?;
    let origin = value.to_str().ok()?;
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    if authority.contains(['/', '@']) {
        return None;
    }
    let host = normalize_host(authority)?;
    let app = parse_subdomain(wildcard.subdomain(&host)?).ok()?;
    app.user.eq_ignore_ascii_case(owner).then(|| value.clone())
}

/// portshare's answer to a preflight in `managed` mode: `204`, allowing the
/// requested method and headers for a trusted origin, nothing otherwise.
pub fn preflight(origin: Option<HeaderValue>, request: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(respond::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin else {
        return response;
    };
    allow(headers, origin);
    if let Some(method) = request.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method.clone());
    }
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    response
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    if !headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("origin"))
    }) {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `managed` mode on an app's response: the app's `Access-Control-*`
/// headers go, portshare's (for a trusted origin) come.
pub fn manage(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    let theirs: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in theirs {
        headers.remove(name);
    }
    if let Some(origin) = origin {
        allow(headers, origin);
    }
}

/// On a response portshare wrote itself (a denial, an error page): the
/// headers a trusted origin needs to read it.
pub fn expose(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    if let Some(origin) = origin {
        allow(headers, origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin_of(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_forwarded_ports_of_the_same_owner_are_trusted() {
        let w = Wildcard::parse("*.apps.localhost").unwrap();
        let trusted = |origin: &str| trusted_origin(&w, &origin_of(origin), "alice").is_some();
        assert!(trusted("http://3000--main--dev--alice.apps.localhost:8080"));
        assert!(trusted("https://5173--web--other--ALICE.apps.localhost"));
        assert!(!trusted("http://3000--main--dev--bob.apps.localhost"));
        assert!(!trusted("http://apps.localhost"));
        assert!(!trusted("http://evil.example"));
        assert!(!trusted(
            "http://3000--main--dev--alice.apps.localhost.evil.example"
        ));
        assert!(!trusted("null"));
        assert!(!trusted("http://x@3000--main--dev--alice.apps.localhost"));
    }
}
