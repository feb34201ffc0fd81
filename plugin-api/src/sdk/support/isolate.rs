//! Finding the poison messages of a batch the host refused for good.
//!
//! When the host answers a batch with a permanent error (a backend says a
//! series can never be stored, or panics on it), retrying the batch whole
//! would fail forever and hold back everything behind it. A consumer then
//! bisects: it hands each half to the host on its own, splits again the
//! halves that fail permanently, and ends with single messages that fail on
//! their own: the poison, to be dead-lettered. The rest of the batch is
//! written on the way. One poison message among `n` costs about
//! `2 log2 n` extra attempts.
//!
//! [`Bisect`] is only the bookkeeping (which part of the batch to try
//! next); the consumer does the attempts, the waits after transient
//! failures and the dead-lettering, each in its own way.

use std::ops::Range;

/// The parts of a batch still to hand to the host, as index ranges, the
/// next one to try on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bisect {
    stack: Vec<Range<usize>>,
}

impl Bisect {
    /// A batch of `len` messages, to be tried whole first.
    pub fn new(len: usize) -> Self {
        let mut stack = Vec::new();
        if len > 0 {
            stack.push(0..len);
        }
        Bisect { stack }
    }

    /// The part to hand to the host next; `None` when every message is
    /// resolved (written or dead-lettered).
    pub fn current(&self) -> Option<Range<usize>> {
        self.stack.last().cloned()
    }

    /// The current part is resolved: written, or (a single message)
    /// dead-lettered.
    pub fn resolved(&mut self) {
        self.stack.pop();
    }

    /// The current part failed permanently: it is replaced by its two
    /// halves, the first to be tried next, and `true` is answered. A single
    /// message cannot be split: `false`, and it stays current (it is
    /// poison; resolve it once dead-lettered).
    pub fn split(&mut self) -> bool {
        match self.stack.last() {
            Some(r) if r.len() > 1 => {
                let r = self.stack.pop().unwrap_or_default();
                let middle = r.start + r.len() / 2;
                self.stack.push(middle..r.end);
                self.stack.push(r.start..middle);
                true
            }
            _ => false,
        }
    }

    /// The indices not resolved yet, in order.
    pub fn unresolved(&self) -> impl Iterator<Item = usize> + '_ {
        self.stack.iter().rev().flat_map(Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the bisection against a host that refuses any part holding a
    /// poison index; answers the poison found and the attempts made.
    fn isolate(len: usize, poison: &[usize]) -> (Vec<usize>, usize, Vec<usize>) {
        let mut b = Bisect::new(len);
        let (mut found, mut attempts, mut written) = (Vec::new(), 0, Vec::new());
        while let Some(r) = b.current() {
            attempts += 1;
            if r.clone().any(|i| poison.contains(&i)) {
                if !b.split() {
                    assert_eq!(r.len(), 1);
                    found.push(r.start);
                    b.resolved();
                }
            } else {
                written.extend(r);
                b.resolved();
            }
        }
        (found, attempts, written)
    }

    #[test]
    fn finds_each_poison_message_and_writes_every_other_one_once() {
        let (found, attempts, written) = isolate(1000, &[417]);
        assert_eq!(found, vec![417]);
        assert!(attempts <= 2 * 10 + 1, "{attempts} attempts");
        assert_eq!(written, (0..1000).filter(|i| *i != 417).collect::<Vec<_>>(), "in order, once each");

        let (found, _, written) = isolate(7, &[0, 3, 6]);
        assert_eq!(found, vec![0, 3, 6]);
        assert_eq!(written, vec![1, 2, 4, 5]);
        let (found, attempts, _) = isolate(1, &[0]);
        assert_eq!((found, attempts), (vec![0], 1));
        assert_eq!(isolate(5, &[]).1, 1, "a batch without poison is tried once");
        assert_eq!(Bisect::new(0).current(), None);
    }

    #[test]
    fn a_single_message_stays_current_until_resolved() {
        let mut b = Bisect::new(2);
        assert!(b.split());
        assert_eq!(b.current(), Some(0..1));
        assert_eq!(b.unresolved().collect::<Vec<_>>(), vec![0, 1]);
        assert!(!b.split(), "one message cannot be split");
        assert_eq!(b.current(), Some(0..1), "still there, to be dead-lettered");
        b.resolved();
        assert_eq!(b.unresolved().collect::<Vec<_>>(), vec![1]);
    }
}
