//! The `portshare` binary as a child process: start it on a config, read its
//! log lines, talk to it over raw HTTP/1.1, send it signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portshare"))
}

pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/portshare.toml")
}

pub fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("portshare.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `portshare serve` running as a child process, its stderr read line by line.
pub struct Served {
    pub child: Child,
    pub address: String,
    lines: mpsc::Receiver<String>,
}

impl Served {
    pub fn start(config: &Path) -> Served {
        Served::start_with_args(config, &[])
    }

    /// Starts `serve` with extra arguments (e.g. `--log-format json`).
    pub fn start_with_args(config: &Path, args: &[&str]) -> Served {
        let mut child = bin()
            .args(["serve", "--config"])
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut served = Served {
            child,
            address: String::new(),
            lines,
        };
        let line = served.wait_for("portshare listening");
        // Text logs say `address=…`; JSON logs have an "address" field.
        let from_json = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|event| event["address"].as_str().map(str::to_string));
        served.address = from_json
            .or_else(|| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix("address="))
                    .map(str::to_string)
            })
            .expect("the listening line names the address");
        served
    }

    /// The next log line containing `needle` (within 20 s).
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no log line containing {needle:?}");
    }

    /// A raw HTTP/1.1 exchange; returns the whole response text.
    pub fn exchange(&self, head: &str) -> String {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn config_on_port_zero(dir: &tempfile::TempDir) -> (PathBuf, String) {
    let text = std::fs::read_to_string(example_config())
        .unwrap()
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    (write_config(dir, &text), text)
}

/// One raw HTTP/1.1 exchange with `address` (the request should say
/// `Connection: close`); returns the whole answer.
pub fn raw(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The example config's workspace `dev` (alice's).
pub const DEMO_DEV: &str = "4c6cc635-bec5-45b7-a5e3-f8b2d05c1713";

/// A share API call on the example config's `dev`, as alice.
pub fn demo_api(address: &str, method: &str, body: &str) -> String {
    raw(
        address,
        &format!(
            "{method} /api/v2/workspaces/{DEMO_DEV}/port-share HTTP/1.1\r\nHost: localhost\r\n\
             Coder-Session-Token: alice-demo-token\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}
