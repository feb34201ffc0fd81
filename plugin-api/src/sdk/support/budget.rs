//! The point budget of one fetch: how a backend honours
//! [`FetchRequest::point_limit`](crate::types::FetchRequest::point_limit).
//!
//! A fetch may return at most `point_limit` points over all its series (0:
//! no limit), and says so with `FetchResponse::limited` when the limit cut
//! it short. Backends read series concurrently, so the budget is shared
//! between those reads: each read claims what it found, keeps what it was
//! granted, and stops reading once the budget is gone. Lock-free: a claim
//! is one atomic update.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The points a fetch may still return, shared by its concurrent reads.
#[derive(Debug)]
pub struct PointBudget {
    /// The limit; 0: none.
    limit: u64,
    remaining: AtomicU64,
    /// Some read found more points than it was granted.
    cut: AtomicBool,
}

impl PointBudget {
    /// The budget of a fetch with `point_limit` `limit` (0: no limit).
    pub fn new(limit: u64) -> Self {
        PointBudget { limit, remaining: AtomicU64::new(limit), cut: AtomicBool::new(false) }
    }

    /// A budget that grants everything (deletes, counts).
    pub fn unlimited() -> Self {
        Self::new(0)
    }

    /// The limit, or `None` when there is none.
    pub fn limit(&self) -> Option<u64> {
        (self.limit > 0).then_some(self.limit)
    }

    /// The points still to be granted, or `None` when there is no limit.
    /// A backend whose queries take a row limit passes this down, so that a
    /// query never returns more than the fetch may keep.
    pub fn remaining(&self) -> Option<u64> {
        self.limit().map(|_| self.remaining.load(Ordering::Relaxed))
    }

    /// Claims `found` points; answers how many of them may be kept (the
    /// first ones, in the read's order). Granting fewer than `found` marks
    /// the fetch as cut short ([`PointBudget::limited`]).
    pub fn claim(&self, found: usize) -> usize {
        if self.limit == 0 {
            return found;
        }
        let wanted = u64::try_from(found).unwrap_or(u64::MAX);
        let before = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| Some(left.saturating_sub(wanted)))
            .unwrap_or_else(|left| left);
        if before < wanted {
            self.cut.store(true, Ordering::Relaxed);
        }
        // `before.min(wanted)` is at most `found`, so it fits a usize.
        before.min(wanted) as usize
    }

    /// Whether a limited budget has nothing left: a read not started yet
    /// need not start.
    pub fn is_spent(&self) -> bool {
        self.limit > 0 && self.remaining.load(Ordering::Relaxed) == 0
    }

    /// Whether the limit cut the fetch short: some read found points it was
    /// not granted. This is `FetchResponse::limited` for a backend that
    /// reads on until it finds a point too many. A backend that passes
    /// [`PointBudget::remaining`] down as a query limit cannot see past it
    /// and answers `limited() || is_spent()` instead.
    pub fn limited(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_up_to_the_limit_then_nothing() {
        let b = PointBudget::new(10);
        assert_eq!((b.limit(), b.remaining()), (Some(10), Some(10)));
        assert_eq!(b.claim(4), 4);
        assert_eq!(b.remaining(), Some(6));
        assert!(!b.limited() && !b.is_spent());
        assert_eq!(b.claim(8), 6);
        assert!(b.limited() && b.is_spent());
        assert_eq!(b.claim(3), 0);
        assert_eq!(b.claim(0), 0);
    }

    #[test]
    fn using_up_the_budget_exactly_is_not_a_cut() {
        let b = PointBudget::new(5);
        assert_eq!(b.claim(5), 5);
        assert!(b.is_spent() && !b.limited());
        assert_eq!(b.claim(0), 0);
        assert!(!b.limited(), "finding nothing more is no cut");
        assert_eq!(b.claim(1), 0);
        assert!(b.limited());
    }

    #[test]
    fn zero_means_no_limit() {
        let b = PointBudget::unlimited();
        assert_eq!((b.limit(), b.remaining()), (None, None));
        assert_eq!(b.claim(1 << 40), 1 << 40);
        assert!(!b.limited() && !b.is_spent());
        assert_eq!(PointBudget::new(u64::MAX).claim(usize::MAX), usize::MAX);
    }

    #[test]
    fn concurrent_claims_never_grant_more_than_the_limit() {
        let b = PointBudget::new(1000);
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| (0..100).map(|_| b.claim(3)).sum::<usize>())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 1000);
        assert!(b.limited() && b.is_spent());
    }
}
