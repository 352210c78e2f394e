//! Prometheus metrics. Labels are bounded sets (decision, level, method,
//! status): never a user, workspace or host, so cardinality stays fixed.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::proxy::Outcome;
use crate::share::{ShareLevel, ShareTable};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
    level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LevelLabels {
    level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    method: &'static str,
    status: u16,
}

pub struct Metrics {
    registry: Registry,
    forwarded: Family<DecisionLabels, Counter>,
    access_check: Histogram,
    upstream_latency: Histogram,
    open_connections: Gauge<i64, AtomicI64>,
    upgraded_connections: Gauge<i64, AtomicI64>,
    shares: Family<LevelLabels, Gauge<i64, AtomicI64>>,
    api: Family<ApiLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portshare");
        let forwarded = Family::<DecisionLabels, Counter>::default();
        // Every series exists from the start, at 0, so rates work at once.
        for outcome in Outcome::ALL {
            let levels = ShareLevel::ALL.map(ShareLevel::as_str);
            for level in levels.into_iter().chain(["none"]) {
                let _ = forwarded.get_or_create(&DecisionLabels {
                    decision: outcome.as_str(),
                    level,
                });
            }
        }
        registry.register(
            "forwarded_requests",
            "Forwarded-port requests by decision and the level in force",
            forwarded.clone(),
        );
        // 1 µs .. ~16 ms
        let access_check = Histogram::new(exponential_buckets(1e-6, 4.0, 8));
        registry.register(
            "access_check_duration_seconds",
            "Time to identify the caller and decide, per forwarded request",
            access_check.clone(),
        );
        // 100 µs .. ~26 s
        let upstream_latency = Histogram::new(exponential_buckets(1e-4, 4.0, 10));
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a request to an app until its response head",
            upstream_latency.clone(),
        );
        let open_connections = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "open_connections",
            "Client connections open now",
            open_connections.clone(),
        );
        let upgraded_connections = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "upgraded_connections",
            "Upgraded connections (WebSockets and others) relayed now",
            upgraded_connections.clone(),
        );
        let shares = Family::<LevelLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("shares", "Shares in the table by level", shares.clone());
        let api = Family::<ApiLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Share API calls by method and status",
            api.clone(),
        );
        Metrics {
            registry,
            forwarded,
            access_check,
            upstream_latency,
            open_connections,
            upgraded_connections,
            shares,
            api,
        }
    }
}

/// Increments a gauge for as long as it lives.
pub struct GaugeGuard(Gauge<i64, AtomicI64>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn record_forwarded(&self, outcome: Outcome, level: Option<ShareLevel>) {
        self.forwarded
            .get_or_create(&DecisionLabels {
                decision: outcome.as_str(),
                level: level.map_or("none", ShareLevel::as_str),
            })
            .inc();
    }

    pub fn record_access_check(&self, took: Duration) {
        self.access_check.observe(took.as_secs_f64());
    }

    pub fn record_upstream(&self, took: Duration) {
        self.upstream_latency.observe(took.as_secs_f64());
    }

    pub fn record_api(&self, method: &hyper::Method, status: u16) {
        let method = match *method {
            hyper::Method::GET => "GET",
            hyper::Method::POST => "POST",
            hyper::Method::DELETE => "DELETE",
            _ => "other",
        };
        self.api.get_or_create(&ApiLabels { method, status }).inc();
    }

    pub fn connection_opened(&self) -> GaugeGuard {
        self.open_connections.inc();
        GaugeGuard(self.open_connections.clone())
    }

    pub fn upgrade_started(&self) -> GaugeGuard {
        self.upgraded_connections.inc();
        GaugeGuard(self.upgraded_connections.clone())
    }

    /// The text exposition, with the share counts read from `table` now.
    pub fn render(&self, table: &ShareTable) -> String {
        let counts = table.count_by_level();
        for (level, count) in ShareLevel::ALL.into_iter().zip(counts) {
            self.shares
                .get_or_create(&LevelLabels {
                    level: level.as_str(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("could not encode the metrics");
        }
        text
    }
}
