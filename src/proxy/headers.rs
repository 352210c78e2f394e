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
    // `TE: trailers` is the one TE value to pass on: gRPC needs it.
    let trailers = headers
        .get(header::TE)
        .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"trailers"));
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
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
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

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Sets the forwarding headers the app sees. From a trusted proxy the chain
/// is extended: the peer is appended to `X-Forwarded-For` and the proxy's
/// `X-Forwarded-Proto` and `X-Forwarded-Host` are kept. From anyone else
/// whatever the client sent is replaced, so it cannot pose as another address.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: bool,
    proto: &'static str,
    host: &str,
) {
    if !trusted {
        for name in [
            &X_FORWARDED_FOR,
            &X_FORWARDED_PROTO,
            &X_FORWARDED_HOST,
            &FORWARDED,
        ] {
            headers.remove(name);
        }
    }
    let prior: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let chain = if prior.is_empty() {
        peer.to_string()
    } else {
        format!("{}, {peer}", prior.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !headers.contains_key(&X_FORWARDED_HOST)
        && let Ok(value) = HeaderValue::from_str(host)
    {
        headers.insert(X_FORWARDED_HOST, value);
    }
}

/// The client behind a trusted proxy: the rightmost `X-Forwarded-For` entry
/// that is not itself a trusted proxy; the peer when there is none.
pub fn forwarded_client(
    headers: &HeaderMap,
    peer: IpAddr,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    let entries: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for entry in entries.into_iter().rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return ip,
            Err(_) => break,
        }
    }
    peer
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
    fn forwarding_headers_are_replaced_unless_the_peer_is_trusted() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let spoofed = || {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
            headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            headers.insert("x-forwarded-host", HeaderValue::from_static("bank.example"));
            headers.insert("forwarded", HeaderValue::from_static("for=1.2.3.4"));
            headers
        };
        let mut headers = spoofed();
        set_forwarded(&mut headers, peer, false, "http", "app.localhost");
        assert_eq!(headers.get("x-forwarded-for").unwrap(), "10.0.0.5");
        assert_eq!(headers.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(headers.get("x-forwarded-host").unwrap(), "app.localhost");
        assert!(!headers.contains_key("forwarded"));

        let mut headers = spoofed();
        set_forwarded(&mut headers, peer, true, "http", "app.localhost");
        assert_eq!(headers.get("x-forwarded-for").unwrap(), "1.2.3.4, 10.0.0.5");
        assert_eq!(headers.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(headers.get("x-forwarded-host").unwrap(), "bank.example");
    }

    #[test]
    fn client_behind_trusted_proxies_is_the_rightmost_untrusted_entry() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("9.9.9.9, 1.2.3.4, 10.0.0.9"),
        );
        assert_eq!(
            forwarded_client(&headers, peer, trusted).to_string(),
            "1.2.3.4"
        );
        assert_eq!(forwarded_client(&HeaderMap::new(), peer, trusted), peer);
        headers.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(forwarded_client(&headers, peer, trusted), peer);
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
