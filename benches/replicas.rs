//! PostgreSQL: durable upserts per second through the store, and the delay
//! from one replica's `200` to the other replica enforcing the change, over
//! 200 changes (median and p99). Starts a throwaway PostgreSQL and two
//! portshare processes on loopback; skipped (saying so) without Debian's
//! `postgresql` package.
//!
//! Run: `cargo bench --bench replicas`. Results are in the README.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use portshare::share::{CorsMode, Protocol, Share, ShareLevel};
use portshare::store::{PgStore, Store};
use support::binary::{Served, config_on_port_zero, demo_api, raw, write_config};
use support::postgres::Postgres;
use uuid::Uuid;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn anonymous_ok(address: &str, port: u16) -> bool {
    raw(
        address,
        &format!(
            "GET / HTTP/1.1\r\nHost: {port}--main--dev--alice.apps.localhost\r\nConnection: close\r\n\r\n"
        ),
    )
    .starts_with("HTTP/1.1 200")
}

fn replica(dir: &tempfile::TempDir, url: &str) -> Served {
    let tmp = tempfile::TempDir::new_in(dir.path()).unwrap();
    let (_, text) = config_on_port_zero(&tmp);
    let path = write_config(&tmp, &text.replace("sqlite:data/portshare.db", url));
    let served = Served::start(&path);
    let _ = tmp.keep();
    served
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: do nothing then.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };

    let store = PgStore::open(&pg.url()).unwrap();
    let mut latencies = Vec::new();
    for n in 0..1000u32 {
        let share = Share {
            workspace_id: Uuid::from_u128(1),
            agent_name: "main".into(),
            port: 9 + (n % 500) as u16,
            level: ShareLevel::Public,
            protocol: Protocol::Http,
            cors: CorsMode::Managed,
        };
        let started = Instant::now();
        store.upsert(&share).unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let median = percentile(&latencies, 0.5);
    println!(
        "postgres_durable_upsert: median {median:?}, p99 {:?} over 1000 ({:.0} upserts/s from one writer)",
        percentile(&latencies, 0.99),
        1.0 / median.as_secs_f64()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(support::apps::spawn_app());
    let dir = tempfile::tempdir().unwrap();
    let a = replica(&dir, &pg.url());
    let b = replica(&dir, &pg.url());
    b.wait_for("PostgreSQL listener synchronised");
    let mut delays = Vec::new();
    for round in 0..200 {
        let public = round % 2 == 0;
        let answer = if public {
            demo_api(
                &a.address,
                "POST",
                &format!(
                    r#"{{"agent_name":"main","port":{},"share_level":"public"}}"#,
                    app.port
                ),
            )
        } else {
            demo_api(
                &a.address,
                "DELETE",
                &format!(r#"{{"agent_name":"main","port":{}}}"#, app.port),
            )
        };
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let acknowledged = Instant::now();
        while anonymous_ok(&b.address, app.port) != public {
            assert!(
                acknowledged.elapsed() < Duration::from_secs(10),
                "change {round} never arrived"
            );
        }
        delays.push(acknowledged.elapsed());
    }
    delays.sort();
    println!(
        "replica_propagation: median {:?}, p99 {:?}, max {:?} over {} changes",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[delays.len() - 1],
        delays.len()
    );
}
