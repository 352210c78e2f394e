//! The `portshare` binary as a user runs it: `check-config`, `hash-token`,
//! `serve` (logs its address, serves, stops on SIGTERM), and invalid configs
//! refused with exit code 2 before anything is bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::process::Stdio;

use portshare::config::Config;
use support::binary::{Served, bin, config_on_port_zero, example_config, write_config};

#[test]
fn example_config_parses_with_its_demo_users() {
    let config = Config::load(&example_config()).unwrap();
    for (token, username, admin) in [
        ("alice-demo-token", "alice", false),
        ("bob-demo-token", "bob", false),
        ("carol-demo-token", "carol", false),
        ("admin-demo-token", "admin", true),
    ] {
        let user = config.tokens.user(token).expect(token);
        assert_eq!(user.username, username);
        assert_eq!(user.site_admin, admin);
    }
    let dev = config.workspace_by_owner("alice", "dev").unwrap();
    assert_eq!(dev.agent("main").unwrap().upstream_host, "127.0.0.1");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn check_config_accepts_the_example() {
    let out = bin()
        .args(["check-config", "--config"])
        .arg(example_config())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("portshare.toml: valid\n"));
}

#[test]
fn invalid_config_names_the_key_and_exits_2_without_binding() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example_config()).unwrap().replace(
        "max_share_level = \"organization\"",
        "max_share_level = \"everyone\"",
    );
    let path = write_config(&dir, &text);
    for command in ["check-config", "serve"] {
        let out = bin()
            .args([command, "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert_eq!(
            stderr,
            "portshare: config key `workspaces[1].max_share_level`: unknown share level \"everyone\"; \
             expected owner, organization, authenticated or public\n"
        );
        assert!(!stderr.contains("listening"));
    }
}

#[test]
fn missing_config_file_exits_2() {
    let out = bin()
        .args(["serve", "--config", "/nonexistent/portshare.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("portshare: cannot read config file /nonexistent/portshare.toml:")
    );
}

#[test]
fn hash_token_prints_lowercase_sha256_of_stdin() {
    let mut child = bin()
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice-demo-token\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bba775a1794a2ccaa524798e32cea98187c9a32d80433d760a92d449bfddff66\n"
    );
}

/// `serve` logs the address it listens on, answers on it, and exits 0 on SIGTERM.
#[test]
fn serve_logs_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = config_on_port_zero(&dir);
    let mut served = Served::start(&path);
    let response =
        served.exchange("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok\n"), "{response}");

    served.signal("TERM");
    let status = served.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

const DEV_SHARES: &str = "/api/v2/workspaces/4c6cc635-bec5-45b7-a5e3-f8b2d05c1713/port-share";

fn list_shares_as(served: &Served, token: &str) -> String {
    served.exchange(&format!(
        "GET {DEV_SHARES} HTTP/1.1\r\nHost: localhost\r\nCoder-Session-Token: {token}\r\nConnection: close\r\n\r\n"
    ))
}

/// SIGHUP applies a new config to the next request; an invalid one is refused
/// with its reason logged, and the rules in force stay.
#[test]
fn sighup_reloads_users_and_keeps_the_old_config_when_the_new_one_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let (path, text) = config_on_port_zero(&dir);
    let served = Served::start(&path);
    assert!(list_shares_as(&served, "dave-token").starts_with("HTTP/1.1 401 "));

    let dave = format!(
        "{text}\n[[users]]\nid = \"5d0c4a6e-8f1b-4c2d-9e3f-a4b5c6d7e8f9\"\nusername = \"dave\"\nsite_admin = true\ntoken_sha256 = [\"{}\"]\n",
        portshare::identity::TokenHash::of("dave-token").to_hex()
    );
    std::fs::write(&path, &dave).unwrap();
    served.signal("HUP");
    served.wait_for("config reloaded");
    let listed = list_shares_as(&served, "dave-token");
    assert!(listed.starts_with("HTTP/1.1 200 OK\r\n"), "{listed}");
    assert!(listed.ends_with("\r\n\r\n{\"shares\":[]}"), "{listed}");

    std::fs::write(
        &path,
        dave.replace("site_admin = true", "site_admin = \"yes\""),
    )
    .unwrap();
    served.signal("HUP");
    let refused = served.wait_for("config reload refused");
    assert!(refused.contains("site_admin"), "{refused}");
    let listed = list_shares_as(&served, "dave-token");
    assert!(listed.starts_with("HTTP/1.1 200 OK\r\n"), "{listed}");
}

#[test]
fn unreadable_tls_certificate_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = config_on_port_zero(&dir);
    let text = text.replace(
        "wildcard_host = \"*.apps.localhost\"",
        "wildcard_host = \"*.apps.localhost\"\n\n[tls]\ncert = \"missing.pem\"\nkey = \"missing-key.pem\"\n",
    );
    let path = write_config(&dir, &text);
    let out = bin()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let missing = dir.path().join("missing.pem");
    assert!(
        stderr.starts_with(&format!(
            "portshare: config key `tls.cert`: cannot read certificates from {}:",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"));
}
