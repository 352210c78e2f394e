//! Header and query hygiene between the client and the app: hop-by-hop headers
//! out, portshare's own credentials out, forwarding headers in.

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};

use crate::identity::{APP_COOKIE, SESSION_COOKIE, SESSION_HEADER, SESSION_QUERY};

/// Headers that describe one connection, not the message (RFC 9110, 7.6.1),
/// plus the widespread non-standard ones.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// True when the message asks to switch protocols (`Connection: upgrade` and
/// an `Upgrade` header).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Removes hop-by-hop headers. For an upgrade, `Connection: upgrade` and
/// `Upgrade` are kept, since the upgrade must cross the proxy.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let upgrade = is_upgrade(headers);
    let listed: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .filter(|name| name != header::UPGRADE)
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Removes every credential portshare consumed: its token header and its
/// cookies. Other cookies stay, in order. `Authorization` is the app's.
pub fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(SESSION_HEADER);
    if !headers.contains_key(header::COOKIE) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name).trim();
            !pair.is_empty() && name != SESSION_COOKIE && name != APP_COOKIE
        })
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// The query without `coder_session_token`; other parameters are kept as sent.
/// `None` when nothing is left.
pub fn strip_token_query(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !pair.is_empty() && !is_token_param(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

fn is_token_param(raw_name: &str) -> bool {
    raw_name == SESSION_QUERY
        || form_urlencoded::parse(raw_name.as_bytes())
            .next()
            .is_some_and(|(name, _)| name == SESSION_QUERY)
}

/// Appends the peer to `X-Forwarded-For` and sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host`.
pub fn add_forwarded(headers: &mut HeaderMap, peer: IpAddr, proto: &'static str, host: &str) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let prior: Vec<String> = headers
        .get_all(&xff)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_string)
        .collect();
    let chain = if prior.is_empty() {
        peer.to_string()
    } else {
        format!("{}, {peer}", prior.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(xff, value);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(proto),
    );
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_query_is_removed_and_the_rest_kept_verbatim() {
        assert_eq!(
            strip_token_query("a=1&coder_session_token=x&b=%20y"),
            Some("a=1&b=%20y".to_string())
        );
        assert_eq!(strip_token_query("coder_session_token=x"), None);
        assert_eq!(
            strip_token_query("coder%5Fsession%5Ftoken=x&q"),
            Some("q".to_string())
        );
    }

    #[test]
    fn only_portshare_cookies_are_removed() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; coder_session_token=t"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("portshare_app_session=t; b=2"),
        );
        headers.insert(SESSION_HEADER, HeaderValue::from_static("t"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer app"),
        );
        strip_credentials(&mut headers);
        assert_eq!(headers.get(header::COOKIE).unwrap(), "a=1; b=2");
        assert!(!headers.contains_key(SESSION_HEADER));
        assert_eq!(headers.get(header::AUTHORIZATION).unwrap(), "Bearer app");
    }

    #[test]
    fn hop_by_hop_headers_go_but_upgrades_survive() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut headers);
        assert!(headers.is_empty(), "{headers:?}");

        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.get(header::CONNECTION).unwrap(), "upgrade");
        assert_eq!(headers.get(header::UPGRADE).unwrap(), "websocket");
    }
}
