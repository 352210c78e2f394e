//! The port-share REST API over real sockets: shapes, validation order and
//! messages, deletion, authentication, who may call, body limits and routing.

// Test code (this file and the shared `support` module) may unwrap and panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::{ADMIN, ALICE, BOB, CAPPED, CAROL, DEV, LAB, Portshare, Reply, request};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;
const HIDDEN: &str = "Resource not found or you do not have access to this resource";
const INVALID_JSON: &str = "Request body must be valid JSON.";
/// A well-formed UUID that names no workspace.
const NO_SUCH_WORKSPACE: &str = "7d4c1f0e-9b8a-4c3d-8e2f-1a2b3c4d5e6f";

fn share_path(workspace: &str) -> String {
    format!("/api/v2/workspaces/{workspace}/port-share")
}

fn share(workspace: &str, agent: &str, port: u16, level: &str, protocol: &str) -> Value {
    json!({
        "workspace_id": workspace,
        "agent_name": agent,
        "port": port,
        "share_level": level,
        "protocol": protocol,
        "cors": "managed",
    })
}

fn message(text: &str) -> Value {
    json!({ "message": text })
}

fn field_error(field: &str, text: &str) -> Value {
    json!({
        "message": text,
        "validations": [{ "field": field, "detail": text }],
    })
}

async fn post(ps: &Portshare, token: &str, workspace: &str, body: &str) -> Reply {
    ps.api(Method::POST, Some(token), workspace, Some(body))
        .await
}

async fn delete(ps: &Portshare, token: &str, workspace: &str, body: &str) -> Reply {
    ps.api(Method::DELETE, Some(token), workspace, Some(body))
        .await
}

/// The share list of `workspace` as alice; asserts a 200.
async fn list(ps: &Portshare, workspace: &str) -> Value {
    let reply = ps.api(Method::GET, Some(ALICE), workspace, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// A POST as alice on `dev` that must succeed; returns the stored share.
async fn upsert_ok(ps: &Portshare, body: &str) -> Value {
    let reply = post(ps, ALICE, DEV, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{body}: {}", reply.text());
    reply.json()
}

fn assert_reply(reply: &Reply, status: StatusCode, body: &Value, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text());
    assert_eq!(&reply.json(), body, "{what}");
}

/// 400 "Request body must be valid JSON.", with the decoder's reason as the
/// detail and no validations.
fn assert_invalid_json(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.text()
    );
    let body = reply.json();
    assert_eq!(body["message"], INVALID_JSON, "{what}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: detail explains the decode error: {body}"
    );
    let mut keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["detail", "message"], "{what}: no validations");
}

/// A valid upsert of `main:8080` padded with trailing spaces to `len` bytes.
fn padded_upsert(len: usize) -> String {
    let mut body = r#"{"agent_name":"main","port":8080,"share_level":"public"}"#.to_string();
    assert!(body.len() < len);
    body.push_str(&" ".repeat(len - body.len()));
    body
}

/// Sends a POST whose body has no declared length, so hyper frames it with
/// `Transfer-Encoding: chunked`, one chunk per element of `chunks`.
async fn post_chunked(ps: &Portshare, token: &str, workspace: &str, chunks: Vec<Bytes>) -> Reply {
    let frames = chunks
        .into_iter()
        .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let req = Request::builder()
        .method(Method::POST)
        .uri(share_path(workspace))
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("coder-session-token", token)
        .body(body)
        .unwrap();
    let stream = TcpStream::connect(ps.addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(req)
        .await
        .expect("a response to the chunked request");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// `body` split in 64 KiB chunks.
fn chunks_of(body: &str) -> Vec<Bytes> {
    body.as_bytes()
        .chunks(64 * 1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

// 1. An empty list is `[]`.

#[tokio::test]
async fn get_without_shares_is_an_empty_list() {
    let ps = Portshare::start().await;
    let reply = ps.api(Method::GET, Some(ALICE), DEV, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), r#"{"shares":[]}"#);
    assert_eq!(reply.json(), json!({ "shares": [] }));
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

// 2. Upsert.

#[tokio::test]
async fn post_returns_the_stored_share_and_get_lists_it() {
    let ps = Portshare::start().await;
    let stored = upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"organization","protocol":"https"}"#,
    )
    .await;
    let want = share(DEV, "main", 8080, "organization", "https");
    assert_eq!(stored, want);
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [want] }));
}

#[tokio::test]
async fn second_post_on_the_same_agent_and_port_updates_in_place() {
    let ps = Portshare::start().await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"organization","protocol":"http"}"#,
    )
    .await;
    let updated = upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"public","protocol":"https"}"#,
    )
    .await;
    let want = share(DEV, "main", 8080, "public", "https");
    assert_eq!(updated, want);
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [want] }));

    // The same key spelled in another case is still the same share.
    let again = upsert_ok(
        &ps,
        r#"{"agent_name":"MAIN","port":8080,"share_level":"authenticated"}"#,
    )
    .await;
    let want = share(DEV, "main", 8080, "authenticated", "http");
    assert_eq!(again, want);
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [want] }));
}

#[tokio::test]
async fn absent_or_null_protocol_means_http() {
    let ps = Portshare::start().await;
    let absent = upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":3000,"share_level":"public"}"#,
    )
    .await;
    assert_eq!(absent, share(DEV, "main", 3000, "public", "http"));
    let null = upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":3001,"share_level":"public","protocol":null}"#,
    )
    .await;
    assert_eq!(null, share(DEV, "main", 3001, "public", "http"));
}

#[tokio::test]
async fn agent_name_is_matched_case_insensitively_and_stored_as_configured() {
    let ps = Portshare::start().await;
    let upper = upsert_ok(
        &ps,
        r#"{"agent_name":"MAIN","port":8080,"share_level":"public"}"#,
    )
    .await;
    assert_eq!(upper, share(DEV, "main", 8080, "public", "http"));
    let lower = upsert_ok(
        &ps,
        r#"{"agent_name":"second","port":8080,"share_level":"public"}"#,
    )
    .await;
    assert_eq!(lower, share(DEV, "Second", 8080, "public", "http"));
}

// 3. Order of the list.

#[tokio::test]
async fn list_is_sorted_by_port_then_agent_name() {
    let ps = Portshare::start().await;
    for (agent, port) in [
        ("main", 9000),
        ("Second", 8080),
        ("main", 8080),
        ("Second", 3000),
    ] {
        upsert_ok(
            &ps,
            &format!(r#"{{"agent_name":"{agent}","port":{port},"share_level":"public"}}"#),
        )
        .await;
    }
    // Agent names compare as stored, byte by byte: "Second" < "main".
    assert_eq!(
        list(&ps, DEV).await,
        json!({ "shares": [
            share(DEV, "Second", 3000, "public", "http"),
            share(DEV, "Second", 8080, "public", "http"),
            share(DEV, "main", 8080, "public", "http"),
            share(DEV, "main", 9000, "public", "http"),
        ]})
    );
}

// 4. Validation, in Coder's order.

#[tokio::test]
async fn post_with_a_body_that_does_not_decode_is_invalid_json() {
    let ps = Portshare::start().await;
    for body in [
        r#"{"agent_name":"#,
        r#"{"agent_name":"main","port":"80","share_level":"public"}"#,
        r#"{"agent_name":"main","port":99999999999,"share_level":"public"}"#,
        r#"{"agent_name":"main","port":2147483648,"share_level":"public"}"#,
        // The fields in order, as an array: not the object the API takes.
        r#"["main",8080,"public","http"]"#,
        "[]",
        "42",
    ] {
        assert_invalid_json(&post(&ps, ALICE, DEV, body).await, body);
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

#[tokio::test]
async fn post_with_a_level_that_is_not_allowed() {
    let ps = Portshare::start().await;
    let want = field_error("share_level", "Port sharing level not allowed.");
    for level in ["owner", "", "PUBLIC", "everyone"] {
        let body = format!(r#"{{"agent_name":"main","port":8080,"share_level":"{level}"}}"#);
        assert_reply(
            &post(&ps, ALICE, DEV, &body).await,
            StatusCode::BAD_REQUEST,
            &want,
            &body,
        );
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

#[tokio::test]
async fn post_with_a_port_out_of_range() {
    let ps = Portshare::start().await;
    let want = field_error("port", "Port must be between 9 and 65535.");
    for port in ["8", "0", "-1", "65536"] {
        let body = format!(r#"{{"agent_name":"main","port":{port},"share_level":"public"}}"#);
        assert_reply(
            &post(&ps, ALICE, DEV, &body).await,
            StatusCode::BAD_REQUEST,
            &want,
            &body,
        );
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

#[tokio::test]
async fn post_accepts_the_bounds_of_the_port_range() {
    let ps = Portshare::start().await;
    for port in [9, 65535] {
        let body = format!(r#"{{"agent_name":"main","port":{port},"share_level":"public"}}"#);
        assert_eq!(
            upsert_ok(&ps, &body).await,
            share(DEV, "main", port, "public", "http")
        );
    }
    assert_eq!(
        list(&ps, DEV).await,
        json!({ "shares": [
            share(DEV, "main", 9, "public", "http"),
            share(DEV, "main", 65535, "public", "http"),
        ]})
    );
}

#[tokio::test]
async fn post_with_a_protocol_that_is_not_allowed() {
    let ps = Portshare::start().await;
    let want = field_error("protocol", "Port protocol not allowed.");
    for protocol in ["HTTP", "tcp", ""] {
        let body = format!(
            r#"{{"agent_name":"main","port":8080,"share_level":"public","protocol":"{protocol}"}}"#
        );
        assert_reply(
            &post(&ps, ALICE, DEV, &body).await,
            StatusCode::BAD_REQUEST,
            &want,
            &body,
        );
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

#[tokio::test]
async fn post_above_the_workspace_max_level() {
    let ps = Portshare::start().await;
    for level in ["public", "authenticated"] {
        let body = format!(r#"{{"agent_name":"main","port":8080,"share_level":"{level}"}}"#);
        assert_reply(
            &post(&ps, ALICE, CAPPED, &body).await,
            StatusCode::BAD_REQUEST,
            &message(&format!(
                "\"{level}\" sharing level is not allowed under max level \"organization\""
            )),
            &body,
        );
    }
    assert_eq!(list(&ps, CAPPED).await, json!({ "shares": [] }));
    // The maximum itself is allowed.
    let reply = post(
        &ps,
        ALICE,
        CAPPED,
        r#"{"agent_name":"main","port":8080,"share_level":"organization"}"#,
    )
    .await;
    assert_reply(
        &reply,
        StatusCode::OK,
        &share(CAPPED, "main", 8080, "organization", "http"),
        "organization on capped",
    );
}

#[tokio::test]
async fn post_for_an_unknown_agent() {
    let ps = Portshare::start().await;
    for agent in ["nope", "", "mainx"] {
        let body = format!(r#"{{"agent_name":"{agent}","port":8080,"share_level":"public"}}"#);
        assert_reply(
            &post(&ps, ALICE, DEV, &body).await,
            StatusCode::BAD_REQUEST,
            &message("Agent not found."),
            &body,
        );
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

#[tokio::test]
async fn post_reports_the_first_failed_check() {
    let ps = Portshare::start().await;
    let cases = [
        // Level before port.
        (
            DEV,
            r#"{"agent_name":"main","port":1,"share_level":"owner"}"#,
            field_error("share_level", "Port sharing level not allowed."),
        ),
        // Level before everything: an empty object fails on the level.
        (
            DEV,
            r#"{}"#,
            field_error("share_level", "Port sharing level not allowed."),
        ),
        // Port before protocol.
        (
            DEV,
            r#"{"agent_name":"main","port":70000,"share_level":"public","protocol":"tcp"}"#,
            field_error("port", "Port must be between 9 and 65535."),
        ),
        // Protocol before the maximum level.
        (
            CAPPED,
            r#"{"agent_name":"main","port":8080,"share_level":"public","protocol":"tcp"}"#,
            field_error("protocol", "Port protocol not allowed."),
        ),
        // The maximum level before the agent.
        (
            CAPPED,
            r#"{"agent_name":"nope","port":8080,"share_level":"public"}"#,
            message(r#""public" sharing level is not allowed under max level "organization""#),
        ),
    ];
    for (workspace, body, want) in cases {
        assert_reply(
            &post(&ps, ALICE, workspace, body).await,
            StatusCode::BAD_REQUEST,
            &want,
            body,
        );
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
    assert_eq!(list(&ps, CAPPED).await, json!({ "shares": [] }));
}

// 5. Delete.

#[tokio::test]
async fn delete_answers_200_with_an_empty_body_then_404() {
    let ps = Portshare::start().await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"public"}"#,
    )
    .await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8081,"share_level":"public"}"#,
    )
    .await;
    let body = r#"{"agent_name":"main","port":8080}"#;
    let reply = delete(&ps, ALICE, DEV, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.body.is_empty(), "empty body, got {:?}", reply.text());
    // Only that share is gone.
    assert_eq!(
        list(&ps, DEV).await,
        json!({ "shares": [share(DEV, "main", 8081, "public", "http")] })
    );

    assert_reply(
        &delete(&ps, ALICE, DEV, body).await,
        StatusCode::NOT_FOUND,
        &message("Port share not found."),
        "second delete",
    );
}

#[tokio::test]
async fn delete_of_a_share_that_never_existed_is_404() {
    let ps = Portshare::start().await;
    for body in [
        r#"{"agent_name":"main","port":8080}"#,
        r#"{"agent_name":"nope","port":8080}"#,
        r#"{"agent_name":"main","port":70000}"#,
        r#"{"agent_name":"main","port":-1}"#,
    ] {
        assert_reply(
            &delete(&ps, ALICE, DEV, body).await,
            StatusCode::NOT_FOUND,
            &message("Port share not found."),
            body,
        );
    }
}

#[tokio::test]
async fn delete_with_invalid_json_is_400() {
    let ps = Portshare::start().await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"public"}"#,
    )
    .await;
    for body in [
        r#"{"agent_name":"#,
        r#"{"agent_name":"main","port":"8080"}"#,
        r#"{"agent_name":"main","port":99999999999}"#,
    ] {
        assert_invalid_json(&delete(&ps, ALICE, DEV, body).await, body);
    }
    assert_eq!(
        list(&ps, DEV).await,
        json!({ "shares": [share(DEV, "main", 8080, "public", "http")] })
    );
}

#[tokio::test]
async fn delete_matches_the_agent_name_case_insensitively() {
    let ps = Portshare::start().await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"Second","port":8080,"share_level":"public"}"#,
    )
    .await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8081,"share_level":"public"}"#,
    )
    .await;
    for body in [
        r#"{"agent_name":"SECOND","port":8080}"#,
        r#"{"agent_name":"Main","port":8081}"#,
    ] {
        let reply = delete(&ps, ALICE, DEV, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}: {}", reply.text());
        assert!(reply.body.is_empty(), "{body}: {:?}", reply.text());
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

// 6. Authentication.

#[tokio::test]
async fn no_token_is_401_with_a_challenge() {
    let ps = Portshare::start().await;
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let reply = ps
            .api(
                method.clone(),
                None,
                DEV,
                Some(r#"{"agent_name":"main","port":8080,"share_level":"public"}"#),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method}");
        let body = reply.json();
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method}: a message: {body}"
        );
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|v| !v.is_empty()),
            "{method}: www-authenticate: {:?}",
            reply.headers
        );
    }
    // Authentication comes before the workspace id is even parsed.
    let reply = ps.api(Method::GET, None, "not-a-uuid", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

#[tokio::test]
async fn an_invalid_token_is_401_like_no_token() {
    let ps = Portshare::start().await;
    let anonymous = ps.api(Method::GET, None, DEV, None).await;
    for token in ["not-a-token", "alice-test-token-2", "ALICE-TEST-TOKEN"] {
        let reply = ps.api(Method::GET, Some(token), DEV, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(reply.json(), anonymous.json(), "{token:?}");
        assert!(reply.header("www-authenticate").is_some(), "{token:?}");
    }
}

/// A `GET` of dev's shares with `token` sent the way `source` names.
async fn get_with_token_in(ps: &Portshare, source: &str, token: &str) -> Reply {
    let path = share_path(DEV);
    let (uri, header) = match source {
        "header" => (path, Some(("coder-session-token", token.to_string()))),
        "cookie" => (
            path,
            Some(("cookie", format!("theme=dark; coder_session_token={token}"))),
        ),
        "query" => (format!("{path}?coder_session_token={token}"), None),
        "bearer" => (path, Some(("authorization", format!("Bearer {token}")))),
        other => panic!("unknown token source {other}"),
    };
    let headers: Vec<(&str, &str)> = header.iter().map(|(n, v)| (*n, v.as_str())).collect();
    ps.send(request(
        Method::GET,
        "localhost",
        &uri,
        &headers,
        Bytes::new(),
    ))
    .await
}

#[tokio::test]
async fn every_token_source_works_for_get() {
    let ps = Portshare::start().await;
    for source in ["header", "cookie", "query", "bearer"] {
        let reply = get_with_token_in(&ps, source, ALICE).await;
        assert_reply(&reply, StatusCode::OK, &json!({ "shares": [] }), source);
        let reply = get_with_token_in(&ps, source, "wrong-token").await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{source} with a wrong token: {}",
            reply.text()
        );
        // bob's valid token reaches the workspace check: 404, not 401.
        let reply = get_with_token_in(&ps, source, BOB).await;
        assert_reply(&reply, StatusCode::NOT_FOUND, &message(HIDDEN), source);
    }
}

// 7. Who may call.

#[tokio::test]
async fn owner_and_site_admin_may_get_post_and_delete() {
    let ps = Portshare::start().await;
    for (who, token) in [("owner", ALICE), ("site admin", ADMIN)] {
        let reply = post(
            &ps,
            token,
            DEV,
            r#"{"agent_name":"main","port":8080,"share_level":"organization"}"#,
        )
        .await;
        let want = share(DEV, "main", 8080, "organization", "http");
        assert_reply(&reply, StatusCode::OK, &want, who);

        let reply = ps.api(Method::GET, Some(token), DEV, None).await;
        assert_reply(&reply, StatusCode::OK, &json!({ "shares": [want] }), who);

        let reply = delete(&ps, token, DEV, r#"{"agent_name":"main","port":8080}"#).await;
        assert_eq!(reply.status, StatusCode::OK, "{who}: {}", reply.text());
        assert!(reply.body.is_empty(), "{who}: {:?}", reply.text());

        let reply = ps.api(Method::GET, Some(token), DEV, None).await;
        assert_reply(&reply, StatusCode::OK, &json!({ "shares": [] }), who);
    }
}

#[tokio::test]
async fn others_get_the_same_404_as_for_a_missing_workspace() {
    let ps = Portshare::start().await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"public"}"#,
    )
    .await;
    let before = list(&ps, DEV).await;
    let hidden = message(HIDDEN);
    let calls = [
        (Method::GET, None),
        (
            Method::POST,
            Some(r#"{"agent_name":"main","port":8080,"share_level":"organization"}"#),
        ),
        (Method::DELETE, Some(r#"{"agent_name":"main","port":8080}"#)),
    ];
    for (who, token, workspace) in [
        ("same organization", BOB, DEV),
        ("other organization", CAROL, DEV),
        ("owner, no such workspace", ALICE, NO_SUCH_WORKSPACE),
        ("site admin, no such workspace", ADMIN, NO_SUCH_WORKSPACE),
    ] {
        for (method, body) in &calls {
            let reply = ps.api(method.clone(), Some(token), workspace, *body).await;
            assert_reply(
                &reply,
                StatusCode::NOT_FOUND,
                &hidden,
                &format!("{who} {method}"),
            );
        }
    }
    assert_eq!(
        list(&ps, DEV).await,
        before,
        "unchanged by the refused calls"
    );

    // bob is refused dev, not refused everything: his own workspace answers.
    let reply = ps.api(Method::GET, Some(BOB), LAB, None).await;
    assert_reply(
        &reply,
        StatusCode::OK,
        &json!({ "shares": [] }),
        "bob on lab",
    );
}

#[tokio::test]
async fn a_workspace_id_that_is_not_a_uuid_is_400() {
    let ps = Portshare::start().await;
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let reply = ps
            .api(method.clone(), Some(ALICE), "not-a-uuid", Some("{}"))
            .await;
        assert_reply(
            &reply,
            StatusCode::BAD_REQUEST,
            &json!({ "message": "Invalid UUID \"not-a-uuid\"." }),
            method.as_str(),
        );
    }
}

// 8. Body limit.

#[tokio::test]
async fn a_body_over_1_mib_with_content_length_is_413() {
    let ps = Portshare::start().await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"organization"}"#,
    )
    .await;
    let before = list(&ps, DEV).await;
    let reply = post(&ps, ALICE, DEV, &padded_upsert(MIB + 1)).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );
    assert_eq!(reply.json()["message"], "Request body is too large.");
    assert_eq!(list(&ps, DEV).await, before, "table unchanged");
}

#[tokio::test]
async fn a_chunked_body_over_1_mib_is_413() {
    let ps = Portshare::start().await;
    upsert_ok(
        &ps,
        r#"{"agent_name":"main","port":8080,"share_level":"organization"}"#,
    )
    .await;
    let before = list(&ps, DEV).await;
    let reply = post_chunked(&ps, ALICE, DEV, chunks_of(&padded_upsert(MIB + 1))).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );
    assert_eq!(reply.json()["message"], "Request body is too large.");
    assert_eq!(list(&ps, DEV).await, before, "table unchanged");
}

#[tokio::test]
async fn a_body_of_exactly_1_mib_is_read() {
    let ps = Portshare::start().await;
    let want = share(DEV, "main", 8080, "public", "http");
    let reply = post(&ps, ALICE, DEV, &padded_upsert(MIB)).await;
    assert_reply(&reply, StatusCode::OK, &want, "content-length");
    ps.unshare(8080).await;
    let reply = post_chunked(&ps, ALICE, DEV, chunks_of(&padded_upsert(MIB))).await;
    assert_reply(&reply, StatusCode::OK, &want, "chunked");
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [want] }));
}

// 9. Routing.

#[tokio::test]
async fn healthz_is_ok() {
    let ps = Portshare::start().await;
    let reply = ps.get("localhost", "/healthz", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "ok\n");
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let ps = Portshare::start().await;
    for path in [
        "/api/v2/nope",
        "/api/v2/workspaces//port-share",
        &format!("/api/v2/workspaces/{DEV}/port-shares"),
    ] {
        let reply = ps
            .get("localhost", path, &[("coder-session-token", ALICE)])
            .await;
        assert_reply(
            &reply,
            StatusCode::NOT_FOUND,
            &message("Route not found."),
            path,
        );
    }
}

#[tokio::test]
async fn other_methods_on_the_share_path_are_405_with_allow() {
    let ps = Portshare::start().await;
    for method in [Method::PUT, Method::PATCH] {
        let reply = ps
            .api(
                method.clone(),
                Some(ALICE),
                DEV,
                Some(r#"{"agent_name":"main","port":8080,"share_level":"public"}"#),
            )
            .await;
        assert_reply(
            &reply,
            StatusCode::METHOD_NOT_ALLOWED,
            &message("Method not allowed."),
            method.as_str(),
        );
        assert_eq!(reply.header("allow"), Some("GET, POST, DELETE"), "{method}");
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}

// portshare's extension: a per-share CORS mode, optional on the wire.

#[tokio::test]
async fn cors_mode_is_accepted_returned_and_listed() {
    let ps = Portshare::start().await;
    let body = r#"{"agent_name":"main","port":8080,"share_level":"public","cors":"passthru"}"#;
    let reply = post(&ps, ALICE, DEV, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut want = share(DEV, "main", 8080, "public", "http");
    want["cors"] = json!("passthru");
    assert_eq!(reply.json(), want);
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [want] }));

    // Upserting without the field (as Coder's clients do) goes back to managed.
    let body = r#"{"agent_name":"main","port":8080,"share_level":"public"}"#;
    let reply = post(&ps, ALICE, DEV, body).await;
    assert_eq!(reply.json(), share(DEV, "main", 8080, "public", "http"));
}

#[tokio::test]
async fn unknown_cors_mode_is_400() {
    let ps = Portshare::start().await;
    for mode in ["\"open\"", "\"Managed\"", "\"\""] {
        let body =
            format!(r#"{{"agent_name":"main","port":8080,"share_level":"public","cors":{mode}}}"#);
        let reply = post(&ps, ALICE, DEV, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            reply.json(),
            json!({
                "message": "CORS mode not allowed.",
                "detail": "Use \"managed\" (the default) or \"passthru\".",
                "validations": [{"field": "cors", "detail": "CORS mode not allowed."}],
            })
        );
    }
    assert_eq!(list(&ps, DEV).await, json!({ "shares": [] }));
}
