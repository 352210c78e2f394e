//! CORS for shared ports, with real `Origin` and `Access-Control-Request-*`
//! headers, in both modes: the cases users reported against other proxies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use support::apps::{APP_OWN_ORIGIN, spawn_app};
use support::{ALICE, BOB, CAROL, Portshare, Reply, Setup, app_host, request};

/// A frontend on another forwarded port of the same owner (alice).
const FRONTEND: &str = "http://3000--main--dev--alice.apps.localhost:8080";
/// A forwarded port of another user.
const STRANGER: &str = "http://3000--main--lab--bob.apps.localhost";

async fn share_with_cors(ps: &Portshare, port: u16, level: &str, cors: &str) {
    let body =
        format!(r#"{{"agent_name":"main","port":{port},"share_level":"{level}","cors":"{cors}"}}"#);
    let reply = ps
        .api(Method::POST, Some(ALICE), support::DEV, Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

async fn preflight(ps: &Portshare, port: u16, path: &str, origin: &str) -> Reply {
    ps.send(request(
        Method::OPTIONS,
        &app_host(port),
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "content-type, x-portal"),
        ],
        Bytes::new(),
    ))
    .await
}

async fn get_from(
    ps: &Portshare,
    port: u16,
    path: &str,
    origin: &str,
    token: Option<&str>,
) -> Reply {
    let mut headers = vec![("origin", origin)];
    if let Some(token) = token {
        headers.push(("coder-session-token", token));
    }
    ps.get(&app_host(port), path, &headers).await
}

fn assert_allows(reply: &Reply, origin: &str) {
    assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(
        reply
            .headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin")),
        "Vary: Origin is set"
    );
}

fn assert_no_cors(reply: &Reply) {
    let cors: Vec<_> = reply
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "unexpected CORS headers {cors:?}");
}

/// Coder #19728, Gitpod #14576: a preflight carries no cookies; to a port that
/// is not public it must still be answered, never redirected to a sign-in.
#[tokio::test]
async fn managed_preflight_to_an_owner_port_is_answered_without_credentials() {
    let ps = Portshare::start_with(Setup {
        sign_in_url: Some("https://coder.example.com/login"),
        ..Setup::default()
    })
    .await;
    let app = spawn_app().await;
    // No share: the port is alice's only.
    let reply = preflight(&ps, app.port, "/api/items", FRONTEND).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_allows(&reply, FRONTEND);
    assert_eq!(reply.header("access-control-allow-methods"), Some("PUT"));
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("content-type, x-portal")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));
    assert_eq!(reply.header("location"), None);
    assert_eq!(
        reply.header("x-app"),
        None,
        "portshare answered, not the app"
    );
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn managed_preflight_from_a_foreign_origin_allows_nothing() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    for origin in [STRANGER, "https://evil.example", "null"] {
        let reply = preflight(&ps, app.port, "/api/items", origin).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{origin}");
        assert_no_cors(&reply);
        assert_eq!(reply.header("vary"), Some("Origin"));
    }
}

/// Coder #5706: a frontend on one port calls an API on another port of the
/// same owner with credentials; the origin is echoed with credentials allowed.
#[tokio::test]
async fn managed_credentialed_request_from_a_sibling_port_is_allowed() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    share_with_cors(&ps, app.port, "organization", "managed").await;
    let reply = get_from(&ps, app.port, "/api/items", FRONTEND, Some(BOB)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-app"), Some("echo"));
    assert_allows(&reply, FRONTEND);

    // A request from a foreign origin is relayed, but the browser gets no
    // permission to read it.
    let reply = get_from(&ps, app.port, "/api/items", STRANGER, Some(BOB)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_no_cors(&reply);
}

/// In managed mode the app's own CORS headers are replaced by portshare's.
#[tokio::test]
async fn managed_mode_strips_the_apps_own_cors_headers() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    share_with_cors(&ps, app.port, "public", "managed").await;
    let reply = get_from(&ps, app.port, "/cors/data", APP_OWN_ORIGIN, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-app"), Some("echo"));
    assert_no_cors(&reply);

    let reply = get_from(&ps, app.port, "/cors/data", FRONTEND, None).await;
    assert_allows(&reply, FRONTEND);
}

/// Coder #15096: in passthru mode an app that allows an external origin (a
/// portal embedding it) answers the preflight itself, unauthenticated, and
/// its headers reach the browser untouched.
#[tokio::test]
async fn passthru_preflight_and_headers_come_from_the_app() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    share_with_cors(&ps, app.port, "authenticated", "passthru").await;

    let reply = preflight(&ps, app.port, "/cors/data", APP_OWN_ORIGIN).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.header("x-app"), Some("preflight"), "the app answered");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(APP_OWN_ORIGIN)
    );
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET, PUT")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("x-portal")
    );

    let reply = get_from(&ps, app.port, "/cors/data", APP_OWN_ORIGIN, Some(CAROL)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(APP_OWN_ORIGIN)
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
}

/// A denied credentialed cross-origin request gets its 401 or 404 with the
/// headers the mode allows, so the page can read the status.
#[tokio::test]
async fn denials_carry_cors_headers_for_a_trusted_origin() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    // Owner only (no share).
    let reply = get_from(&ps, app.port, "/api/items", FRONTEND, Some(CAROL)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["message"], "Application Not Found");
    assert_allows(&reply, FRONTEND);

    let reply = get_from(&ps, app.port, "/api/items", FRONTEND, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_allows(&reply, FRONTEND);

    let reply = get_from(&ps, app.port, "/api/items", STRANGER, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_no_cors(&reply);

    // passthru: portshare still lets a sibling port read its own denial.
    share_with_cors(&ps, app.port, "organization", "passthru").await;
    let reply = get_from(&ps, app.port, "/api/items", FRONTEND, Some(CAROL)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_allows(&reply, FRONTEND);
}
