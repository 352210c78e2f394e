//! The `portshare` binary as a user runs it: `check-config`, `hash-token`,
//! `serve` (logs its address, serves, stops on SIGTERM), and invalid configs
//! refused with exit code 2 before anything is bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portshare::config::Config;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portshare"))
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/portshare.toml")
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("portshare.toml");
    std::fs::write(&path, text).unwrap();
    path
}

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
    let text = std::fs::read_to_string(example_config())
        .unwrap()
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    let path = write_config(&dir, &text);
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut address = None;
    let mut line = String::new();
    while address.is_none() && Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains("portshare listening") {
            address = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("address="))
                .map(str::to_string);
        }
    }
    let address = address.expect("a log line with the listening address");

    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok\n"), "{response}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
