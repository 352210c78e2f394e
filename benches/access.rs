//! Micro benchmarks of the request path's pure parts: the access decision, the
//! hostname parser and the token lookup.
//!
//! Run: `cargo bench --bench access`. Results are in the README.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portshare::access::decide;
use portshare::apphost::{Wildcard, normalize_host, parse_subdomain};
use portshare::config::{User, Workspace};
use portshare::identity::{Caller, TokenHash, TokenIndex};
use portshare::share::ShareLevel;
use uuid::Uuid;

fn user(id: u128, org: &str, site_admin: bool) -> Arc<User> {
    Arc::new(User {
        id: Uuid::from_u128(id),
        username: format!("user{id}"),
        organizations: vec!["other".into(), org.into()],
        site_admin,
    })
}

fn bench_decide(c: &mut Criterion) {
    let workspace = Workspace {
        id: Uuid::from_u128(100),
        name: "dev".into(),
        owner_id: Uuid::from_u128(1),
        organization: "acme".into(),
        max_share_level: ShareLevel::Public,
        agents: vec![],
    };
    let member = Caller::User(user(3, "acme", false));
    let owner = Caller::User(user(1, "acme", false));
    let mut group = c.benchmark_group("decide");
    group.bench_function("anonymous_public", |b| {
        b.iter(|| {
            decide(
                black_box(Some(ShareLevel::Public)),
                black_box(&Caller::Anonymous),
                &workspace,
            )
        })
    });
    group.bench_function("owner_no_share", |b| {
        b.iter(|| decide(black_box(None), black_box(&owner), &workspace))
    });
    group.bench_function("member_organization", |b| {
        b.iter(|| {
            decide(
                black_box(Some(ShareLevel::Organization)),
                black_box(&member),
                &workspace,
            )
        })
    });
    group.finish();
}

fn bench_host(c: &mut Criterion) {
    let wildcard = Wildcard::parse("*.apps.example.com").unwrap();
    c.bench_function("parse_host", |b| {
        b.iter(|| {
            let host = normalize_host(black_box("8080--main--dev--alice.apps.example.com:443"));
            let host = host.as_deref().unwrap_or("");
            wildcard
                .subdomain(host)
                .map(parse_subdomain)
                .map(|r| r.is_ok())
        })
    });
}

fn bench_token(c: &mut Criterion) {
    let mut index = TokenIndex::default();
    for i in 0..10_000u128 {
        index.insert(TokenHash::of(&format!("token-{i}")), user(i, "acme", false));
    }
    c.bench_function("token_lookup_10k_users", |b| {
        b.iter(|| index.user(black_box("token-4242")).is_some())
    });
}

criterion_group!(benches, bench_decide, bench_host, bench_token);
criterion_main!(benches);
