//! The access table on a real forwarded port: five callers × four levels, no
//! share, and a workspace whose maximum level caps the share.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hyper::StatusCode;
use support::apps::spawn_app;
use support::{ADMIN, ALICE, BOB, CAROL, Portshare, Setup, app_host};

/// Callers in the order of the access table's rows.
const CALLERS: [(&str, Option<&str>); 5] = [
    ("anonymous", None),
    ("owner", Some(ALICE)),
    ("site admin", Some(ADMIN)),
    ("organization member", Some(BOB)),
    ("other organization", Some(CAROL)),
];

async fn status_for(ps: &Portshare, host: &str, token: Option<&str>) -> StatusCode {
    let headers: Vec<(&str, &str)> = token
        .map(|t| ("coder-session-token", t))
        .into_iter()
        .collect();
    let reply = ps.get(host, "/", &headers).await;
    if reply.status == StatusCode::OK {
        assert_eq!(reply.header("x-app"), Some("echo"), "the app answered");
    }
    reply.status
}

async fn row_statuses(ps: &Portshare, host: &str) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for (_, token) in CALLERS {
        out.push(status_for(ps, host, token).await);
    }
    out
}

const OK: StatusCode = StatusCode::OK;
const UNAUTH: StatusCode = StatusCode::UNAUTHORIZED;
const HIDDEN: StatusCode = StatusCode::NOT_FOUND;

#[tokio::test]
async fn every_caller_at_every_level() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    let host = app_host(app.port);

    // Column by column; each vector is anonymous, owner, admin, member, other.
    let expected = [
        ("no share", None, [UNAUTH, OK, OK, HIDDEN, HIDDEN]),
        (
            "organization",
            Some("organization"),
            [UNAUTH, OK, OK, OK, HIDDEN],
        ),
        (
            "authenticated",
            Some("authenticated"),
            [UNAUTH, OK, OK, OK, OK],
        ),
        ("public", Some("public"), [OK, OK, OK, OK, OK]),
    ];
    for (name, level, want) in expected {
        if let Some(level) = level {
            ps.share(app.port, level).await;
        }
        assert_eq!(
            row_statuses(&ps, &host).await,
            want.to_vec(),
            "level {name}"
        );
    }
}

#[tokio::test]
async fn owner_share_is_the_same_as_no_share() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    // `owner` cannot be set through the API (un-sharing is a DELETE), so the
    // owner column is reached by deleting a wider share.
    ps.share(app.port, "public").await;
    ps.unshare(app.port).await;
    assert_eq!(
        row_statuses(&ps, &app_host(app.port)).await,
        vec![UNAUTH, OK, OK, HIDDEN, HIDDEN]
    );
}

#[tokio::test]
async fn lowered_max_level_caps_an_existing_public_share() {
    // The share is made while the workspace allows public, then the operator
    // lowers the maximum: the stored share stays public, the level in force is
    // organization.
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    ps.share(app.port, "public").await;
    let capped = support::Setup {
        dev_max_level: "organization",
        ..Setup::default()
    };
    let config = portshare::config::Config::parse(&capped.toml()).unwrap();
    ps.app.config.store(std::sync::Arc::new(config));
    assert_eq!(
        row_statuses(&ps, &app_host(app.port)).await,
        vec![UNAUTH, OK, OK, OK, HIDDEN]
    );
}

#[tokio::test]
async fn capped_workspace_refuses_wider_shares_and_serves_organization() {
    let ps = Portshare::start().await;
    let app = spawn_app().await;
    let body = format!(
        r#"{{"agent_name":"main","port":{},"share_level":"organization"}}"#,
        app.port
    );
    let reply = ps
        .api(
            hyper::Method::POST,
            Some(ALICE),
            support::CAPPED,
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, OK, "{}", reply.text());
    let host = format!("{}--main--capped--alice.apps.localhost", app.port);
    assert_eq!(
        row_statuses(&ps, &host).await,
        vec![UNAUTH, OK, OK, OK, HIDDEN]
    );
}
