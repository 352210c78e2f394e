//! Credential extraction and stripping: arbitrary Cookie, token header and
//! query values never panic, and after stripping no portshare credential is
//! left for the app.
#![no_main]

use hyper::header::{COOKIE, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portshare::identity::{
    self, APP_COOKIE, SESSION_COOKIE, SESSION_HEADER, SESSION_QUERY, TokenHash, TokenIndex,
};
use portshare::proxy::headers::{strip_credentials, strip_token_query};

fuzz_target!(|data: &[u8]| {
    // Three fields separated by 0xFF: cookie line, token header, query.
    let mut fields = data.split(|b| *b == 0xFF);
    let cookie = fields.next().unwrap_or_default();
    let token = fields.next().unwrap_or_default();
    let query = fields.next().and_then(|q| std::str::from_utf8(q).ok());

    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(cookie) {
        headers.append(COOKIE, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(token) {
        headers.append(SESSION_HEADER, value);
    }
    let mut index = TokenIndex::default();
    let _ = index.insert(
        TokenHash::of("good"),
        std::sync::Arc::new(portshare::config::User {
            id: uuid::Uuid::nil(),
            username: "u".into(),
            organizations: vec![],
            site_admin: false,
        }),
    );
    let _ = identity::app_caller(&index, &headers, query);
    let _ = identity::api_caller(&index, &headers, query);
    let _ = identity::query_token(&index, query);

    strip_credentials(&mut headers);
    assert!(!headers.contains_key(SESSION_HEADER));
    assert_eq!(identity::cookies(&headers, SESSION_COOKIE).count(), 0);
    assert_eq!(identity::cookies(&headers, APP_COOKIE).count(), 0);
    if let Some(query) = query {
        let rest = strip_token_query(query);
        assert_eq!(identity::query_values(rest.as_deref(), SESSION_QUERY).count(), 0);
    }
});
