//! Retrying transient failures: capped exponential backoff with jitter that
//! honours the error's retry hint.
//!
//! Every plugin that talks to a server retries the same way: wait `initial`,
//! then twice as long each time up to `max`, each wait scaled by a random
//! factor in [50 %, 100 %] so that clients failing together (one overloaded
//! node, one hot tablet) do not come back together; give up after
//! `max_retries` retries, or when the next attempt would start later than
//! `max_elapsed` after the first. A server that says how long to wait (HTTP
//! `Retry-After`, gRPC `RetryInfo`, [`PluginError::retry_after`]) is not
//! asked again sooner.
//!
//! - [`RetryPolicy`]: the numbers, usually read from the plugin's config.
//! - [`Backoff`]: the state of one call, or of one loop that pauses after
//!   failures ([`Backoff::reset`] after a success): [`Backoff::next_delay`]
//!   answers how long to wait before the next attempt, or that it is time to
//!   give up.
//! - [`retry`]: the whole loop for the common case, "call until it succeeds
//!   or fails for good".

use std::fmt::Display;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::error::PluginError;

/// How to retry: the first wait, the longest wait, and when to give up.
///
/// The wait before retry `n` (counting from 0) is `initial × 2ⁿ`, at most
/// `max`, scaled by a random factor in [0.5, 1] unless jitter is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the first retry.
    pub initial: Duration,
    /// The longest wait, whatever the number of retries.
    pub max: Duration,
    /// Retries after the first attempt at most; `None`: no limit.
    pub max_retries: Option<u32>,
    /// No retry starts later than this after the first attempt; `None`: no
    /// limit.
    pub max_elapsed: Option<Duration>,
    /// Scale each wait by a random factor in [0.5, 1], so that clients
    /// failing at the same moment spread their retries.
    pub jitter: bool,
}

impl RetryPolicy {
    /// Waits from `initial` doubling up to `max`, with jitter, retrying
    /// without limit until the `with_*` methods set one.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        RetryPolicy { initial, max, max_retries: None, max_elapsed: None, jitter: true }
    }

    /// The same policy, giving up after `retries` retries.
    pub const fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// The same policy, starting no retry later than `elapsed` after the
    /// first attempt.
    pub const fn with_max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = Some(elapsed);
        self
    }

    /// The same policy with exact waits: for settings documented as exact
    /// doublings, and for tests.
    pub const fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The wait before retry `retry` (the first is 0), before jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A fresh [`Backoff`] for one call.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(*self)
    }
}

/// The retry state of one call (or of one loop pausing after failures).
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    retries: u32,
    started: Instant,
}

impl Backoff {
    /// A backoff whose first attempt starts now.
    pub fn new(policy: RetryPolicy) -> Self {
        Backoff { policy, retries: 0, started: Instant::now() }
    }

    /// The policy this backoff follows.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Retries granted so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Attempts made so far, counting the one under way: retries + 1.
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The pause before the next attempt, or `None` when it is time to give
    /// up (out of retries, or the attempt would start after `max_elapsed`).
    ///
    /// `hint` is the failure's own word on when to come back (a server's
    /// `Retry-After`, [`PluginError::retry_after`]): the pause is at least
    /// that long, and the backoff gives up rather than retry sooner than
    /// told when that would run past `max_elapsed`.
    pub fn next_delay(&mut self, hint: Option<Duration>) -> Option<Duration> {
        if self.policy.max_retries.is_some_and(|max| self.retries >= max) {
            return None;
        }
        let mut delay = self.policy.delay(self.retries);
        if self.policy.jitter {
            delay = delay.mul_f64(jitter());
        }
        if let Some(hint) = hint {
            delay = delay.max(hint);
        }
        if let Some(max_elapsed) = self.policy.max_elapsed {
            if self.started.elapsed().saturating_add(delay) > max_elapsed {
                return None;
            }
        }
        self.retries += 1;
        Some(delay)
    }

    /// Starts over, as if no attempt had failed: the next pause is the
    /// initial one again, and the elapsed time counts from now. For loops
    /// that pause after failures and go back to normal after a success.
    pub fn reset(&mut self) {
        self.retries = 0;
        self.started = Instant::now();
    }
}

/// A factor in [0.5, 1). The standard library's hashing keys are random
/// per process and differ for every `RandomState`: enough randomness to
/// spread retries, without a random number crate.
fn jitter() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    // The top 53 bits give a uniform fraction in [0, 1), halved.
    0.5 + (hasher.finish() >> 11) as f64 / (1u64 << 54) as f64
}

/// What [`retry`] reads from an error besides whether it is worth
/// retrying: how long the error itself says to wait. Implement it with the
/// default method (`impl RetryHint for MyError {}`) when errors carry no
/// hint.
pub trait RetryHint {
    /// The least wait before trying again, when the error says.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl RetryHint for PluginError {
    fn retry_after(&self) -> Option<Duration> {
        PluginError::retry_after(self)
    }
}

/// Calls `op` until it succeeds, fails with an error `is_retryable` refuses,
/// or `policy` gives up; answers the last outcome. Each retry waits as
/// [`Backoff::next_delay`] says, honouring the error's [`RetryHint`], and is
/// logged at debug level.
///
/// ```no_run
/// # use std::time::Duration;
/// # use heroic_plugin_api::{PluginError, PluginResult};
/// # use heroic_plugin_api::sdk::support::{retry, RetryPolicy};
/// # async fn call() -> PluginResult<u64> { Ok(1) }
/// # async fn example() -> PluginResult<u64> {
/// let policy = RetryPolicy::new(Duration::from_millis(50), Duration::from_secs(5)).with_max_retries(5);
/// retry(&policy, PluginError::is_transient, call).await
/// # }
/// ```
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    mut is_retryable: impl FnMut(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    E: RetryHint + Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = policy.backoff();
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !is_retryable(&error) {
            return Err(error);
        }
        let attempt = backoff.attempts();
        let Some(delay) = backoff.next_delay(error.retry_after()) else {
            return Err(error);
        };
        tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying after a transient failure");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn exact(initial: u32, max: u32) -> RetryPolicy {
        RetryPolicy::new(initial * MS, max * MS).without_jitter()
    }

    #[test]
    fn delays_double_from_the_initial_one() {
        let mut b = exact(100, 10_000).backoff();
        let got: Vec<Duration> = (0..4).map(|_| b.next_delay(None).unwrap()).collect();
        assert_eq!(got, [100 * MS, 200 * MS, 400 * MS, 800 * MS]);
        assert_eq!((b.retries(), b.attempts()), (4, 5));
    }

    #[test]
    fn delays_stop_growing_at_the_cap() {
        let p = exact(100, 1000);
        assert_eq!(p.delay(3), 800 * MS);
        assert_eq!(p.delay(4), 1000 * MS);
        assert_eq!(p.delay(200), 1000 * MS, "no overflow after many retries");
        let mut b = p.backoff();
        let last = (0..50).map(|_| b.next_delay(None).unwrap()).last();
        assert_eq!(last, Some(1000 * MS));
        assert_eq!(RetryPolicy::new(Duration::MAX, Duration::MAX).delay(40), Duration::MAX);
    }

    #[test]
    fn jitter_scales_each_delay_into_its_upper_half() {
        let p = RetryPolicy::new(1000 * MS, 1000 * MS);
        let delays: Vec<Duration> = (0..200).map(|_| p.backoff().next_delay(None).unwrap()).collect();
        assert!(delays.iter().all(|d| (500 * MS..=1000 * MS).contains(d)), "{delays:?}");
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "the delays vary: {} distinct of 200", distinct.len());
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.5..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn max_retries_bounds_the_retries() {
        let mut b = exact(1, 10).with_max_retries(3).backoff();
        assert_eq!((0..5).filter_map(|_| b.next_delay(None)).count(), 3);
        assert_eq!(b.attempts(), 4);
        assert_eq!(exact(1, 10).with_max_retries(0).backoff().next_delay(None), None);
    }

    #[test]
    fn max_elapsed_refuses_a_retry_that_would_start_too_late() {
        let mut b = exact(100, 100).with_max_elapsed(Duration::from_secs(10)).backoff();
        assert_eq!(b.next_delay(None), Some(100 * MS));
        b.started = Instant::now() - Duration::from_millis(9_850);
        assert_eq!(b.next_delay(None), Some(100 * MS), "starts at 9.95 s: in time");
        b.started = Instant::now() - Duration::from_millis(9_950);
        assert_eq!(b.next_delay(None), None, "would start at 10.05 s");
    }

    #[test]
    fn a_hint_raises_the_delay_but_not_past_max_elapsed() {
        let mut b = exact(100, 1000).with_max_elapsed(Duration::from_secs(10)).backoff();
        assert_eq!(b.next_delay(Some(3000 * MS)), Some(3000 * MS), "above the cap: the server knows best");
        assert_eq!(b.next_delay(Some(50 * MS)), Some(200 * MS), "a shorter hint changes nothing");
        assert_eq!(b.next_delay(Some(20_000 * MS)), None, "giving up beats retrying too early");
        let with_jitter = RetryPolicy::new(1000 * MS, 1000 * MS).backoff().next_delay(Some(1000 * MS));
        assert_eq!(with_jitter, Some(1000 * MS), "jitter never cuts below the hint");
    }

    #[test]
    fn reset_starts_over() {
        let mut b = exact(10, 1000).with_max_retries(2).with_max_elapsed(Duration::from_secs(1)).backoff();
        b.next_delay(None);
        b.next_delay(None);
        b.started = Instant::now() - Duration::from_secs(5);
        assert_eq!(b.next_delay(None), None);
        b.reset();
        assert_eq!((b.retries(), b.attempts()), (0, 1));
        assert_eq!(b.next_delay(None), Some(10 * MS));
    }

    fn flaky(failures: u32, error: PluginError) -> impl FnMut() -> std::future::Ready<Result<u32, PluginError>> {
        let mut calls = 0;
        move || {
            calls += 1;
            std::future::ready(if calls > failures { Ok(calls) } else { Err(error.clone()) })
        }
    }

    #[tokio::test]
    async fn retry_calls_until_success() {
        let policy = exact(1, 2).with_max_retries(5);
        let got = retry(&policy, PluginError::is_transient, flaky(3, PluginError::unavailable("down"))).await;
        assert_eq!(got, Ok(4));
    }

    #[tokio::test]
    async fn retry_stops_at_a_permanent_error_or_when_out_of_retries() {
        let policy = exact(1, 2).with_max_retries(2);
        let mut calls = 0;
        let permanent = retry(&policy, PluginError::is_transient, || {
            calls += 1;
            std::future::ready(Err::<(), _>(PluginError::invalid_input("bad")))
        })
        .await;
        assert_eq!((permanent.unwrap_err().kind, calls), (crate::ErrorKind::INVALID_INPUT, 1));
        let exhausted = retry(&policy, PluginError::is_transient, flaky(10, PluginError::timeout("slow"))).await;
        assert_eq!(exhausted.unwrap_err().kind, crate::ErrorKind::TIMEOUT);
    }

    #[tokio::test]
    async fn retry_waits_at_least_the_hint() {
        let policy = exact(1, 1).with_max_retries(1);
        let busy = PluginError::resource_exhausted("busy").with_retry_after(Duration::from_millis(80));
        let started = Instant::now();
        assert_eq!(retry(&policy, PluginError::is_transient, flaky(1, busy)).await, Ok(2));
        assert!(started.elapsed() >= 80 * MS, "{:?}", started.elapsed());
    }
}
