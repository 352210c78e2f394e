//! Several replicas on one PostgreSQL: a change made through one is enforced
//! by the other, concurrent writes end in one value everywhere, and while the
//! database is down replicas keep serving and refuse writes with 503.
//!
//! Each test starts a throwaway PostgreSQL (`initdb` and `pg_ctl` from
//! Debian's `postgresql` package) in a temporary folder on a free port. Without
//! those binaries the tests say so and pass, unless
//! `PORTSHARE_REQUIRE_POSTGRES` is set (as `.ci/run` does), when they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::apps::spawn_app;
use support::binary::{Served, config_on_port_zero, demo_api, raw, write_config};
use support::postgres::Postgres;

/// A portshare process on the example config with its store on `url`.
fn replica(dir: &Path, url: &str) -> Served {
    let tmp = tempfile::TempDir::new_in(dir).unwrap();
    let (_, text) = config_on_port_zero(&tmp);
    let text = text.replace("sqlite:data/portshare.db", url);
    assert!(text.contains(url));
    let path = write_config(&tmp, &text);
    let served = Served::start(&path);
    // Kept until `dir` goes: the replica's config lives in it.
    let _ = tmp.keep();
    served
}

fn share(address: &str, port: u16, level: &str) -> String {
    demo_api(
        address,
        "POST",
        &format!(r#"{{"agent_name":"main","port":{port},"share_level":"{level}"}}"#),
    )
}

/// The status line an anonymous GET gets on the app's forwarded port.
fn anonymous_status(address: &str, port: u16) -> String {
    let answer = raw(
        address,
        &format!(
            "GET / HTTP/1.1\r\nHost: {port}--main--dev--alice.apps.localhost\r\nConnection: close\r\n\r\n"
        ),
    );
    answer.lines().next().unwrap_or_default().to_string()
}

/// Polls until `check` holds; returns how long that took.
fn until(what: &str, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// An upsert through one replica is enforced by the other; over 200 changes
/// the propagation delay is measured and printed (median and p99).
#[test]
fn a_change_through_one_replica_is_enforced_by_the_other() {
    let Some(pg) = Postgres::start() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), &pg.url());
    let b = replica(dir.path(), &pg.url());
    b.wait_for("PostgreSQL listener synchronised");

    let mut delays = Vec::new();
    for round in 0..100 {
        let answer = share(&a.address, app.port, "public");
        assert!(
            answer.starts_with("HTTP/1.1 200 OK"),
            "round {round}: {answer}"
        );
        delays.push(until("b admits the public share", || {
            anonymous_status(&b.address, app.port) == "HTTP/1.1 200 OK"
        }));
        let body = format!(r#"{{"agent_name":"main","port":{}}}"#, app.port);
        let answer = demo_api(&a.address, "DELETE", &body);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK"),
            "round {round}: {answer}"
        );
        delays.push(until("b denies after the delete", || {
            anonymous_status(&b.address, app.port) == "HTTP/1.1 401 Unauthorized"
        }));
    }
    delays.sort();
    eprintln!(
        "propagation over {} changes: median {:?}, p99 {:?}, max {:?}",
        delays.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[delays.len() - 1]
    );
    drop(rt);
}

/// Writes racing on one share from two replicas end in one value, the same
/// on both replicas and in the database.
#[test]
fn racing_writes_end_in_one_value_everywhere() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), &pg.url());
    let b = replica(dir.path(), &pg.url());
    a.wait_for("PostgreSQL listener synchronised");
    b.wait_for("PostgreSQL listener synchronised");
    let (addr_a, addr_b) = (a.address.clone(), b.address.clone());
    let writer_a = std::thread::spawn(move || {
        for _ in 0..40 {
            assert!(share(&addr_a, 7000, "public").starts_with("HTTP/1.1 200"));
            assert!(share(&addr_a, 7000, "organization").starts_with("HTTP/1.1 200"));
        }
    });
    let writer_b = std::thread::spawn(move || {
        for _ in 0..40 {
            assert!(share(&addr_b, 7000, "authenticated").starts_with("HTTP/1.1 200"));
        }
    });
    writer_a.join().unwrap();
    writer_b.join().unwrap();

    let level_on = |address: &str| {
        let answer = demo_api(address, "GET", "");
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        list["shares"][0]["share_level"]
            .as_str()
            .unwrap()
            .to_string()
    };
    until("both replicas agree", || {
        level_on(&a.address) == level_on(&b.address)
    });
    // A fresh replica reads the database itself: the same value.
    let c = replica(dir.path(), &pg.url());
    assert_eq!(level_on(&c.address), level_on(&a.address));
}

/// With the database down, replicas serve what they have and answer writes
/// with 503; once it is back they reconnect, resynchronise and accept writes.
#[test]
fn database_down_keeps_serving_and_refuses_writes() {
    let Some(pg) = Postgres::start() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), &pg.url());
    assert!(share(&a.address, app.port, "public").starts_with("HTTP/1.1 200 OK"));

    pg.stop();
    let answer = share(&a.address, app.port, "organization");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.contains("The share store is unavailable; the change was not made."),
        "{answer}"
    );
    assert_eq!(anonymous_status(&a.address, app.port), "HTTP/1.1 200 OK");

    pg.pg_ctl_start();
    until("writes are accepted again", || {
        share(&a.address, app.port, "organization").starts_with("HTTP/1.1 200 OK")
    });
    a.wait_for("PostgreSQL listener synchronised");
    assert_eq!(
        anonymous_status(&a.address, app.port),
        "HTTP/1.1 401 Unauthorized"
    );
    drop(rt);
}
