//! Admission of queries: how many run at once, and how many points and
//! buckets all running queries may keep in memory together.
//!
//! Both are node-wide bounds that no client option can raise. A query
//! waits a little for a free slot (dashboards send bursts), and a query
//! whose retained data would go over the node's budget waits a little for
//! other answers to be sent; past the queue timeout either is refused with
//! 503 and `Retry-After`. (Two large queries each holding part of the budget
//! and waiting for the rest can only hold each other up until that timeout.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::QueryConfig;
use crate::http::error::ApiError;

/// What a refused query is told to wait before trying again, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

/// Counters of refused queries, for `/status`.
#[derive(Debug, Default)]
pub struct AdmissionStats {
    pub refused_busy: AtomicU64,
    pub refused_memory: AtomicU64,
}

/// The node's query slots and retained-data budget.
pub struct Admission {
    slots: Arc<Semaphore>,
    slots_total: usize,
    queue_timeout: Duration,
    budget: Arc<Semaphore>,
    budget_points: u64,
    pub stats: AdmissionStats,
}

impl Admission {
    pub fn new(config: &QueryConfig) -> Admission {
        // Semaphores count in usize and hand out u32 permits at a time; the
        // budget is kept well inside both.
        let budget_points = config.max_retained_points.min(Semaphore::MAX_PERMITS as u64);
        Admission {
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            slots_total: config.max_concurrent,
            queue_timeout: Duration::from_millis(config.queue_timeout_ms),
            budget: Arc::new(Semaphore::new(budget_points as usize)),
            budget_points,
            stats: AdmissionStats::default(),
        }
    }

    /// Query slots: (taken now, all).
    pub fn slots(&self) -> (usize, usize) {
        (self.slots_total.saturating_sub(self.slots.available_permits()), self.slots_total)
    }

    /// Waits for a query slot, at most the queue timeout.
    pub async fn admit(&self) -> Result<Ticket, ApiError> {
        let slot = match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            // Timed out (or closed, which never happens).
            _ => {
                self.stats.refused_busy.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::busy(
                    format!(
                        "too many queries running: every one of the {} query slots stayed busy for {} ms (query.max_concurrent); retry later",
                        self.slots_total,
                        self.queue_timeout.as_millis()
                    ),
                    RETRY_AFTER_SECS,
                ));
            }
        };
        let retained = Retained {
            budget: self.budget.clone(),
            budget_points: self.budget_points,
            wait: self.queue_timeout,
            held: None,
            points: 0,
        };
        Ok(Ticket { slot: Some(slot), retained })
    }

    /// Points and buckets retained by running queries now.
    pub fn retained_points(&self) -> u64 {
        self.budget_points - self.budget.available_permits() as u64
    }
}

/// A running query's slot and the part of the budget it holds.
pub struct Ticket {
    slot: Option<OwnedSemaphorePermit>,
    retained: Retained,
}

impl Ticket {
    /// Sets the query's share of the budget to `total` points and buckets:
    /// grows it, waiting up to the queue timeout for room, or gives back
    /// what it no longer needs.
    pub async fn retain(&mut self, total: u64, stats: &AdmissionStats) -> Result<(), ApiError> {
        if total < self.retained.points {
            self.retained.shrink(total);
            return Ok(());
        }
        self.retained.grow(total).await.inspect_err(|_| {
            stats.refused_memory.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Frees the slot once the query has run, keeping the retained budget
    /// until its answer has been sent.
    pub fn finish(mut self) -> Retained {
        self.slot = None;
        self.retained
    }
}

/// The budget a query's result holds until it is dropped (its answer sent).
pub struct Retained {
    budget: Arc<Semaphore>,
    budget_points: u64,
    wait: Duration,
    held: Option<OwnedSemaphorePermit>,
    points: u64,
}

impl Retained {
    fn shrink(&mut self, total: u64) {
        if let Some(held) = &mut self.held {
            // Splitting off the excess and dropping it gives it back.
            drop(held.split((self.points - total) as usize));
        }
        self.points = total;
    }

    async fn grow(&mut self, total: u64) -> Result<(), ApiError> {
        if total <= self.points {
            return Ok(());
        }
        let more = total - self.points;
        let refused = || {
            ApiError::busy(
                format!(
                    "the node is holding as many query points as it may (query.max_retained_points = {}); this query needed {more} more; retry later or narrow the query",
                    self.budget_points
                ),
                RETRY_AFTER_SECS,
            )
        };
        let n = u32::try_from(more).map_err(|_| refused())?;
        if total > self.budget_points {
            return Err(refused());
        }
        let permit = match self.budget.clone().try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(_) => match tokio::time::timeout(self.wait, self.budget.clone().acquire_many_owned(n)).await {
                Ok(Ok(permit)) => permit,
                _ => return Err(refused()),
            },
        };
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.points = total;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_concurrent: usize, queue_timeout_ms: u64, max_retained_points: u64) -> QueryConfig {
        QueryConfig { max_concurrent, queue_timeout_ms, max_retained_points, ..QueryConfig::default() }
    }

    #[tokio::test]
    async fn a_query_waits_for_a_slot_then_is_refused() {
        let a = Admission::new(&config(1, 50, 100));
        let first = a.admit().await.unwrap();
        let err = a.admit().await.err().expect("no slot");
        assert_eq!(err.status.as_u16(), 503);
        assert!(err.headers.iter().any(|(k, v)| k == "retry-after" && v == "1"));
        assert_eq!(a.stats.refused_busy.load(Ordering::Relaxed), 1);
        // The slot is freed when the query has run, not when its answer is sent.
        let retained = first.finish();
        assert!(a.admit().await.is_ok());
        drop(retained);
    }

    #[tokio::test]
    async fn the_budget_is_shared_and_given_back() {
        let a = Admission::new(&config(4, 50, 100));
        let mut t1 = a.admit().await.unwrap();
        let mut t2 = a.admit().await.unwrap();
        t1.retain(60, &a.stats).await.unwrap();
        t1.retain(70, &a.stats).await.unwrap();
        assert_eq!(a.retained_points(), 70);
        // Waits the queue timeout for room, then is refused.
        let err = t2.retain(31, &a.stats).await.expect_err("over budget");
        assert!(err.message.contains("max_retained_points"), "{}", err.message);
        assert_eq!(a.stats.refused_memory.load(Ordering::Relaxed), 1);
        t2.retain(30, &a.stats).await.unwrap();
        // More than the whole budget is refused at once.
        let mut t3 = a.admit().await.unwrap();
        assert!(t3.retain(101, &a.stats).await.is_err());
        // Shrinking gives budget back at once.
        t1.retain(20, &a.stats).await.unwrap();
        assert_eq!(a.retained_points(), 50);
        drop(t1.finish());
        assert_eq!(a.retained_points(), 30);
        drop(t2);
        assert_eq!(a.retained_points(), 0);
    }

    #[tokio::test]
    async fn a_query_waits_for_budget_given_back_by_another() {
        let a = Arc::new(Admission::new(&config(4, 5_000, 100)));
        let mut t1 = a.admit().await.unwrap();
        t1.retain(80, &a.stats).await.unwrap();
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move {
                let mut t2 = a.admit().await.unwrap();
                t2.retain(50, &a.stats).await.map(|_| t2.finish())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(t1.finish());
        assert!(waiter.await.unwrap().is_ok());
    }
}
