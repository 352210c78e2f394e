//! Brute-force guard: failed token attempts are counted per client address in
//! a token bucket (`limits.failed_tokens_per_minute`, refilled evenly over the
//! minute). While an address has no attempts left, every request from it that
//! presents a token gets `429` with `Retry-After`, valid or not, so that the
//! answer says nothing about a guess. Addresses that fail nothing pay one
//! map lookup only when they present an invalid token.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Above this many tracked addresses, full buckets are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    attempts: f64,
    updated: Instant,
}

#[derive(Debug, Default)]
pub struct FailedTokens {
    buckets: DashMap<IpAddr, Bucket>,
}

fn refill(bucket: &mut Bucket, per_minute: u32, now: Instant) {
    let capacity = f64::from(per_minute);
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    bucket.attempts = (bucket.attempts + elapsed * capacity / 60.0).min(capacity);
    bucket.updated = now;
}

impl FailedTokens {
    /// How long `client` must wait before presenting a token again; `None`
    /// when it may now.
    pub fn retry_after(&self, client: IpAddr, per_minute: u32) -> Option<Duration> {
        if per_minute == 0 {
            return None;
        }
        let mut bucket = self.buckets.get_mut(&client)?;
        refill(&mut bucket, per_minute, Instant::now());
        (bucket.attempts < 1.0).then(|| {
            Duration::from_secs_f64((1.0 - bucket.attempts) * 60.0 / f64::from(per_minute))
        })
    }

    /// Counts one failed attempt from `client`.
    pub fn record_failure(&self, client: IpAddr, per_minute: u32) {
        if per_minute == 0 {
            return;
        }
        let now = Instant::now();
        if self.buckets.len() > PRUNE_ABOVE {
            self.buckets.retain(|_, bucket| {
                refill(bucket, per_minute, now);
                bucket.attempts < f64::from(per_minute)
            });
        }
        let mut bucket = self.buckets.entry(client).or_insert(Bucket {
            attempts: f64::from(per_minute),
            updated: now,
        });
        refill(&mut bucket, per_minute, now);
        bucket.attempts = (bucket.attempts - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_allowance_and_only_that_address() {
        let limiter = FailedTokens::default();
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.retry_after(attacker, 3), None);
            limiter.record_failure(attacker, 3);
        }
        let wait = limiter.retry_after(attacker, 3).unwrap();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(limiter.retry_after(other, 3), None);
        assert_eq!(
            limiter.retry_after(attacker, 0),
            None,
            "0 turns the limit off"
        );
    }
}
