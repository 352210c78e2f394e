//! Who is calling: session tokens found in a request, hashed with SHA-256 and
//! matched against the configured hashes in constant time.
//!
//! The config stores only hashes. A token is looked up by the first 8 bytes of
//! its hash (a bucket index that says nothing useful about any token), and the
//! full 32 bytes are then compared with `subtle`, so the comparison time does
//! not depend on how many bytes of a stored hash a guess matched.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use hyper::header::{AUTHORIZATION, COOKIE, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::User;

/// Cookie, query parameter and header names that carry a session token.
pub const SESSION_COOKIE: &str = "coder_session_token";
pub const SESSION_QUERY: &str = "coder_session_token";
pub const SESSION_HEADER: &str = "coder-session-token";
/// The host-only cookie portshare sets on a forwarded port after the browser
/// hand-off.
pub const APP_COOKIE: &str = "portshare_app_session";

/// At most this many token candidates are tried per request, so a request
/// stuffed with cookies cannot make portshare hash without end.
const MAX_CANDIDATES: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only a prefix: enough to tell hashes apart in a debug print.
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<TokenHash> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(TokenHash(bytes))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    fn bucket(&self) -> u64 {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(prefix)
    }
}

/// Token hashes of every user.
#[derive(Debug, Default)]
pub struct TokenIndex {
    buckets: HashMap<u64, Vec<(TokenHash, Arc<User>)>>,
}

impl TokenIndex {
    /// Adds a hash; false when the same hash is already present.
    pub fn insert(&mut self, hash: TokenHash, user: Arc<User>) -> bool {
        let bucket = self.buckets.entry(hash.bucket()).or_default();
        if bucket.iter().any(|(known, _)| known.0 == hash.0) {
            return false;
        }
        bucket.push((hash, user));
        true
    }

    /// The user whose token this is.
    pub fn user(&self, token: &str) -> Option<&Arc<User>> {
        self.user_for_hash(&TokenHash::of(token))
    }

    /// The user whose token hashes to `hash`.
    pub fn user_for_hash(&self, hash: &TokenHash) -> Option<&Arc<User>> {
        let bucket = self.buckets.get(&hash.bucket())?;
        let mut found = None;
        for (known, user) in bucket {
            if bool::from(known.0.ct_eq(&hash.0)) {
                found = Some(user);
            }
        }
        found
    }

    /// The first candidate that is a valid token, trying at most a few.
    fn identify<'t>(&self, candidates: impl Iterator<Item = Cow<'t, str>>) -> Identified {
        let mut presented = false;
        for token in candidates.take(MAX_CANDIDATES) {
            presented = true;
            let hash = TokenHash::of(&token);
            if let Some(user) = self.user_for_hash(&hash) {
                return Identified {
                    caller: Caller::User(user.clone()),
                    token: Some(hash),
                    presented,
                };
            }
        }
        Identified {
            caller: Caller::Anonymous,
            token: None,
            presented,
        }
    }
}

/// The caller of a request and the token that identified them, so that an
/// open connection can be re-checked when tokens change.
#[derive(Debug, Clone)]
pub struct Identified {
    pub caller: Caller,
    pub token: Option<TokenHash>,
    /// Whether the request carried any token at all (valid or not).
    pub presented: bool,
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(Arc<User>),
}

impl Caller {
    pub fn user(&self) -> Option<&Arc<User>> {
        match self {
            Caller::Anonymous => None,
            Caller::User(user) => Some(user),
        }
    }
}

/// Values of every cookie named `name`, in the order sent.
pub fn cookies<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        })
}

/// Values of every query parameter named `name`, percent-decoded.
pub fn query_values<'q>(
    query: Option<&'q str>,
    name: &'q str,
) -> impl Iterator<Item = Cow<'q, str>> + 'q {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(move |(key, _)| key == name)
        .map(|(_, value)| value)
}

fn header_values<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
}

fn bearer_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

/// The caller of an API request. Tokens are tried in Coder's order: cookie,
/// query parameter, header, then `Authorization: Bearer`.
pub fn api_caller(tokens: &TokenIndex, headers: &HeaderMap, query: Option<&str>) -> Identified {
    let candidates = cookies(headers, SESSION_COOKIE)
        .map(Cow::Borrowed)
        .chain(query_values(query, SESSION_QUERY))
        .chain(header_values(headers, SESSION_HEADER).map(Cow::Borrowed))
        .chain(bearer_tokens(headers).map(Cow::Borrowed));
    tokens.identify(candidates)
}

/// The caller of a forwarded-port request: the session header, the session
/// cookie, portshare's app cookie, then the query parameter. `Authorization`
/// belongs to the app and is never read here.
pub fn app_caller(tokens: &TokenIndex, headers: &HeaderMap, query: Option<&str>) -> Identified {
    let candidates = header_values(headers, SESSION_HEADER)
        .chain(cookies(headers, SESSION_COOKIE))
        .chain(cookies(headers, APP_COOKIE))
        .map(Cow::Borrowed)
        .chain(query_values(query, SESSION_QUERY));
    tokens.identify(candidates)
}

/// A valid token in the query string, for the browser hand-off.
pub fn query_token<'q>(tokens: &TokenIndex, query: Option<&'q str>) -> Option<Cow<'q, str>> {
    query_values(query, SESSION_QUERY)
        .take(MAX_CANDIDATES)
        .find(|token| tokens.user(token).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use uuid::Uuid;

    fn index() -> TokenIndex {
        let mut index = TokenIndex::default();
        let user = Arc::new(User {
            id: Uuid::nil(),
            username: "alice".into(),
            organizations: vec![],
            site_admin: false,
        });
        assert!(index.insert(TokenHash::of("good"), user.clone()));
        assert!(!index.insert(TokenHash::of("good"), user));
        index
    }

    fn username(caller: &Caller) -> Option<&str> {
        caller.user().map(|u| u.username.as_str())
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        assert_eq!(
            TokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            TokenHash::from_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
            Some(TokenHash::of("abc"))
        );
        assert_eq!(TokenHash::from_hex("ba78"), None);
    }

    #[test]
    fn app_caller_ignores_authorization() {
        let index = index();
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer good"));
        assert_eq!(username(&app_caller(&index, &headers, None).caller), None);
        assert_eq!(
            username(&api_caller(&index, &headers, None).caller),
            Some("alice")
        );
    }

    #[test]
    fn a_stale_cookie_does_not_hide_a_valid_one() {
        let index = index();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static(
                "theme=dark; coder_session_token=stale; coder_session_token=\"good\"",
            ),
        );
        assert_eq!(
            username(&app_caller(&index, &headers, None).caller),
            Some("alice")
        );
    }

    #[test]
    fn only_a_few_candidates_are_tried() {
        let index = index();
        let mut line: Vec<String> = (0..MAX_CANDIDATES)
            .map(|i| format!("coder_session_token=stale{i}"))
            .collect();
        line.push("coder_session_token=good".to_string());
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&line.join("; ")).unwrap());
        let identified = app_caller(&index, &headers, None);
        assert!(matches!(identified.caller, Caller::Anonymous));
        assert!(identified.presented);
    }

    #[test]
    fn query_token_is_percent_decoded() {
        let index = index();
        let headers = HeaderMap::new();
        assert_eq!(
            username(&app_caller(&index, &headers, Some("a=1&coder_session_token=go%6Fd")).caller),
            Some("alice")
        );
        assert_eq!(query_token(&index, Some("coder_session_token=bad")), None);
        assert_eq!(
            query_token(&index, Some("coder_session_token=good")).as_deref(),
            Some("good")
        );
    }

    #[test]
    fn invalid_tokens_are_anonymous() {
        let index = index();
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_HEADER, HeaderValue::from_static("nope"));
        assert!(matches!(
            app_caller(&index, &headers, None).caller,
            Caller::Anonymous
        ));
    }
}
