//! End-to-end benchmark: one small GET on a keep-alive connection, straight to
//! an app and through portshare (public share, and an owner-only port with a
//! session token), measured in the same run so the ratio is comparable.
//!
//! Run: `cargo bench --bench proxy`. Results are in the README.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hyper::{Method, StatusCode};
use support::{ALICE, Conn, Portshare, app_host, request};

fn bench_proxy(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ps, app) = rt.block_on(async {
        let ps = Portshare::start().await;
        let app = support::apps::spawn_app().await;
        (ps, app)
    });
    let public_port = app.port;
    // The same app on another name: one port shared publicly, the other left
    // to its owner (no share) by routing through a second agent name.
    rt.block_on(ps.share(public_port, "public"));
    let owner_host = format!("{}--Second--dev--alice.apps.localhost", app.port);
    let public_host = app_host(public_port);
    let app_addr: std::net::SocketAddr = format!("127.0.0.1:{}", app.port).parse().unwrap();

    let mut group = c.benchmark_group("get_keepalive");
    let mut run = |name: &str,
                   addr: std::net::SocketAddr,
                   host: String,
                   headers: Vec<(&'static str, &'static str)>| {
        let mut conn = rt.block_on(Conn::open(addr));
        group.bench_function(name, |b| {
            b.iter(|| {
                let reply = rt.block_on(conn.send(request(
                    Method::GET,
                    &host,
                    "/hello",
                    &headers,
                    Bytes::new(),
                )));
                assert_eq!(reply.status, StatusCode::OK);
            })
        });
    };
    run("direct_to_app", app_addr, "localhost".into(), vec![]);
    run("portshare_public", ps.addr, public_host, vec![]);
    run(
        "portshare_owner_token",
        ps.addr,
        owner_host,
        vec![("coder-session-token", ALICE)],
    );
    group.finish();
}

criterion_group!(benches, bench_proxy);
criterion_main!(benches);
