//! The embedded store: one durable upsert (SQLite, WAL, synchronous = FULL,
//! so each one waits for the disk), and a start with 100,000 stored shares
//! (open, migrate, load into the table).
//!
//! Run: `cargo bench --bench store`. Results are in the README.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portshare::App;
use portshare::config::Config;
use portshare::share::{CorsMode, Protocol, Share, ShareLevel};
use portshare::store::{SqliteStore, Store};
use uuid::Uuid;

fn share(n: u32) -> Share {
    Share {
        workspace_id: Uuid::from_u128(u128::from(n / 1000)),
        agent_name: "main".into(),
        port: 9 + (n % 1000) as u16,
        level: ShareLevel::Public,
        protocol: Protocol::Http,
        cors: CorsMode::Managed,
    }
}

fn bench_upsert(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let mut n = 0u32;
    c.benchmark_group("store")
        .bench_function("sqlite_durable_upsert", |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                store.upsert(black_box(&share(n % 100_000))).unwrap();
            })
        });
}

fn bench_start(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("start.db");
    SqliteStore::open(&path)
        .unwrap()
        .bulk(|store| {
            for n in 0..100_000 {
                store.upsert(&share(n)).unwrap();
            }
        })
        .unwrap();
    let toml = format!(
        "listen = \"127.0.0.1:0\"\nwildcard_host = \"*.apps.localhost\"\n[store]\nurl = \"sqlite:{}\"\n",
        path.display()
    );
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.bench_function("start_with_100k_shares", |b| {
        b.iter(|| {
            let app = App::new(Config::parse(&toml).unwrap()).unwrap();
            assert_eq!(app.shares.len(), 100_000);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_upsert, bench_start);
criterion_main!(benches);
