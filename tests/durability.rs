//! The embedded store: acknowledged changes survive `kill -9`, shares load
//! before the listener accepts, and a store file that is not a portshare
//! database is refused and left as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::binary::{Served, bin, config_on_port_zero, write_config};

const DEMO_DEV: &str = "4c6cc635-bec5-45b7-a5e3-f8b2d05c1713";

fn with_sqlite_store(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let (_, text) = config_on_port_zero(dir);
    let text = text.replace("sqlite:data/portshare.db", "sqlite:data/shares.db");
    assert!(text.contains("url = \"sqlite:data/shares.db\""));
    write_config(dir, &text)
}

fn upsert(served_address: &str, port: u16) -> Option<u16> {
    use std::io::{Read, Write};
    let body = format!(r#"{{"agent_name":"main","port":{port},"share_level":"public"}}"#);
    let mut stream = std::net::TcpStream::connect(served_address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "POST /api/v2/workspaces/{DEMO_DEV}/port-share HTTP/1.1\r\nHost: localhost\r\n\
         Coder-Session-Token: alice-demo-token\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.1 200 OK").then_some(port)
}

fn listed_ports(served: &Served) -> BTreeSet<u16> {
    let answer = served.exchange(&format!(
        "GET /api/v2/workspaces/{DEMO_DEV}/port-share HTTP/1.1\r\nHost: localhost\r\n\
         Coder-Session-Token: alice-demo-token\r\nConnection: close\r\n\r\n"
    ));
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    let list: serde_json::Value = serde_json::from_str(body).unwrap();
    list["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|share| share["port"].as_u64().unwrap() as u16)
        .collect()
}

/// Upserts run flat out from two threads; the server is killed with SIGKILL
/// in the middle; after a restart every acknowledged share is there.
#[test]
fn kill_9_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_sqlite_store(&dir);
    let mut served = Served::start(&path);
    let address = served.address.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u16)
        .map(|lane| {
            let (address, stop) = (address.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut port = 1000 + lane;
                while !stop.load(Ordering::Relaxed) && port < 60_000 {
                    match upsert(&address, port) {
                        Some(port) => acknowledged.push(port),
                        None => break,
                    }
                    port += 2;
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    served.child.kill().unwrap(); // SIGKILL
    served.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: BTreeSet<u16> = writers
        .into_iter()
        .flat_map(|writer| writer.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() > 20,
        "only {} upserts acknowledged",
        acknowledged.len()
    );

    let restarted = Served::start(&path);
    let listed = listed_ports(&restarted);
    let lost: Vec<_> = acknowledged.difference(&listed).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?}"
    );
    eprintln!(
        "{} upserts acknowledged before kill -9, {} listed after restart",
        acknowledged.len(),
        listed.len()
    );
    // At most the upserts in flight at the kill can be there unacknowledged.
    assert!(listed.len() <= acknowledged.len() + 2);
}

#[test]
fn a_store_file_that_is_not_a_database_stops_the_start_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_sqlite_store(&dir);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let file = dir.path().join("data/shares.db");
    let precious = b"not a database but somebody's data\n".repeat(300);
    std::fs::write(&file, &precious).unwrap();
    let out = bin()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("portshare: share store {}:", file.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        precious,
        "the file was changed"
    );
}

/// A share whose agent disappears from the config is kept (the agent may
/// come back), not served, and still listed.
#[test]
fn shares_of_removed_agents_are_kept_listed_and_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_sqlite_store(&dir);
    let served = Served::start(&path);
    assert_eq!(upsert(&served.address, 4242), Some(4242));
    drop(served);

    let text = std::fs::read_to_string(&path).unwrap();
    let without_main = text.replacen(
        "  [[workspaces.agents]]\n  name = \"main\"\n  address = \"127.0.0.1\"\n",
        "  [[workspaces.agents]]\n  name = \"other\"\n  address = \"127.0.0.1\"\n",
        1,
    );
    assert_ne!(without_main, text);
    std::fs::write(&path, without_main).unwrap();
    let served = Served::start(&path);
    assert_eq!(listed_ports(&served), BTreeSet::from([4242]));
    let answer = served.exchange(
        "GET / HTTP/1.1\r\nHost: 4242--main--dev--alice.apps.localhost\r\n\
         Coder-Session-Token: alice-demo-token\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}
