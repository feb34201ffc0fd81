//! Per-series work spread over the cores.
//!
//! Range functions and instant selectors compute each series alone, from
//! its own samples: over thousands of series that is most of a query's
//! time, and one core would do it while the others idle. [`map_series`]
//! hands batches of series to scoped threads (a shared counter gives out
//! the next batch, so a thread slowed by other work takes fewer) and puts
//! the results back in series order, so the answer is the same, to the
//! last bit, as on one thread. The limits hold across threads: one clock
//! reading for the deadline per [`DEADLINE_EVERY`] ticks on each thread,
//! one count of samples held, and the first failure stops the rest.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::error::Error;
use crate::value::{RangeSeries, Sample};

/// How many ticks go by between two looks at the clock (reading it on
/// every window was a tenth of a large query's time).
pub(crate) const DEADLINE_EVERY: u32 = 1024;

/// Below this many samples a call stays on the calling thread: starting
/// threads costs tens of microseconds, more than a small call takes.
const PARALLEL_MIN_SAMPLES: usize = 1 << 17;

/// Threads one call uses at most, the caller's included: a query must not
/// take a large machine from every other request.
const MAX_THREADS: usize = 8;

/// Series in a batch per thread and turn, aimed at: small enough that the
/// threads finish together, large enough that the counter is rarely
/// touched.
const BATCHES_PER_THREAD: usize = 16;

/// The deadline, looked at every [`DEADLINE_EVERY`]th tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    deadline: Option<Instant>,
    ticks: u32,
}

impl Clock {
    pub(crate) fn new(deadline: Option<Instant>) -> Clock {
        Clock { deadline, ticks: 0 }
    }

    /// Fails with [`Error::Timeout`] once past the deadline; the clock is
    /// read on the first call, then on every [`DEADLINE_EVERY`]th.
    pub(crate) fn tick(&mut self) -> Result<(), Error> {
        let look = self.ticks % DEADLINE_EVERY == 0;
        self.ticks = self.ticks.wrapping_add(1);
        if look && self.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(Error::Timeout);
        }
        Ok(())
    }
}

/// One thread's view of a call's limits.
pub(crate) struct Worker<'s> {
    clock: Clock,
    /// Samples held by every thread of the call.
    held: &'s AtomicUsize,
    /// Samples the call may hold at most.
    room: usize,
    /// Set when a thread failed: the others stop at their next tick.
    stop: &'s AtomicBool,
}

impl Worker<'_> {
    /// [`Clock::tick`], failing too once another thread has failed.
    pub(crate) fn tick(&mut self) -> Result<(), Error> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Error::Timeout);
        }
        self.clock.tick()
    }

    /// Takes `n` more samples, failing past the call's room.
    pub(crate) fn hold(&mut self, n: usize) -> Result<(), Error> {
        self.tick()?;
        let before = self.held.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.room {
            return Err(Error::TooManySamples { limit: crate::eval::MAX_SAMPLES });
        }
        Ok(())
    }
}

/// The machine's cores, asked once (std reads cgroup files on each call).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Threads worth using for work over `samples` samples: one below
/// [`PARALLEL_MIN_SAMPLES`], else as many as the machine has, at most
/// [`MAX_THREADS`].
pub(crate) fn threads_for(samples: usize) -> usize {
    if samples < PARALLEL_MIN_SAMPLES {
        1
    } else {
        cores().min(MAX_THREADS)
    }
}

/// `work(samples, scratch, worker)` for the samples of each of `series`,
/// on up to [`MAX_THREADS`] threads when they are many; the results in
/// series order, and the samples they hold (at most `room`). `scratch` is
/// one per thread, reused between series.
pub(crate) fn map_series<T, S, F>(
    series: &[RangeSeries],
    clock: Clock,
    room: usize,
    work: F,
) -> Result<(Vec<T>, usize), Error>
where
    T: Send,
    S: Default,
    F: Fn(&[Sample], &mut S, &mut Worker<'_>) -> Result<T, Error> + Sync,
{
    map_items(series, |s| s.samples.len(), clock, room, |s, scratch, worker| work(&s.samples, scratch, worker))
}

/// [`map_series`] over any kind of series: `samples(item)` says how many
/// samples one holds (which decides whether threads are worth it).
pub(crate) fn map_items<I, T, S, F>(
    series: &[I],
    samples: impl Fn(&I) -> usize,
    clock: Clock,
    room: usize,
    work: F,
) -> Result<(Vec<T>, usize), Error>
where
    I: Sync,
    T: Send,
    S: Default,
    F: Fn(&I, &mut S, &mut Worker<'_>) -> Result<T, Error> + Sync,
{
    let n = series.len();
    let total: usize = series.iter().fold(0, |a, s| a.saturating_add(samples(s)));
    let threads = threads_for(total).min(n);
    let (held, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    if threads <= 1 {
        let mut worker = Worker { clock, held: &held, room, stop: &stop };
        let mut scratch = S::default();
        let out = series.iter().map(|s| work(s, &mut scratch, &mut worker)).collect::<Result<Vec<T>, Error>>()?;
        return Ok((out, held.into_inner()));
    }
    let batch = n.div_ceil(threads * BATCHES_PER_THREAD).max(1);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    // Each thread gives back its batches as (first series, results).
    let run = || -> Vec<(usize, Vec<T>)> {
        let mut worker = Worker { clock, held: &held, room, stop: &stop };
        let mut scratch = S::default();
        let mut done = Vec::new();
        loop {
            let first = next.fetch_add(batch, Ordering::Relaxed);
            if first >= n || stop.load(Ordering::Relaxed) {
                return done;
            }
            let mut results = Vec::with_capacity(batch.min(n - first));
            for s in &series[first..(first + batch).min(n)] {
                match work(s, &mut scratch, &mut worker) {
                    Ok(t) => results.push(t),
                    Err(e) => {
                        // The first failure is the answer; the threads it
                        // stopped report a timeout that is not.
                        if !stop.swap(true, Ordering::Relaxed) {
                            if let Ok(mut slot) = failure.lock() {
                                *slot = Some(e);
                            }
                        }
                        return done;
                    }
                }
            }
            done.push((first, results));
        }
    };
    let mut batches = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(run)).collect();
        let mut all = run();
        for handle in others {
            match handle.join() {
                Ok(done) => all.extend(done),
                // A panic in `work` is a bug; it is the caller's panic too.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    batches.sort_unstable_by_key(|(first, _)| *first);
    let out: Vec<T> = batches.into_iter().flat_map(|(_, results)| results).collect();
    debug_assert_eq!(out.len(), n);
    Ok((out, held.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Labels;

    /// 5,000 series of 30 samples (enough for threads), each at the time
    /// of its index.
    fn many() -> Vec<RangeSeries> {
        (0..5000)
            .map(|k| RangeSeries { labels: Labels::default(), samples: vec![Sample { t: k, v: 0.0 }; 30] })
            .collect()
    }

    /// Which series `samples` are (see [`many`]).
    fn index(samples: &[Sample]) -> i64 {
        samples[0].t
    }

    #[test]
    fn results_come_back_in_series_order_on_many_threads() {
        let (out, held) = map_series(&many(), Clock::new(None), usize::MAX, |samples, calls: &mut usize, w| {
            *calls += 1;
            w.hold(2)?;
            Ok(index(samples) * 3)
        })
        .unwrap();
        assert_eq!(out, (0..5000).map(|k| k * 3).collect::<Vec<_>>());
        assert_eq!(held, 10_000);
    }

    #[test]
    fn the_first_failure_is_the_answer() {
        let got = map_series(&many(), Clock::new(None), usize::MAX, |samples, _: &mut (), _| {
            if index(samples) == 4321 {
                return Err(Error::Execution("boom".into()));
            }
            Ok(index(samples))
        });
        assert_eq!(got, Err(Error::Execution("boom".into())));
    }

    #[test]
    fn samples_held_across_threads_are_limited() {
        let got = map_series(&many(), Clock::new(None), 9_999, |_, _: &mut (), w| w.hold(2));
        assert_eq!(got, Err(Error::TooManySamples { limit: crate::eval::MAX_SAMPLES }));
    }

    #[test]
    fn a_past_deadline_stops_the_call() {
        let past = Instant::now().checked_sub(std::time::Duration::from_secs(1));
        let got = map_series(&many(), Clock::new(past), usize::MAX, |_, _: &mut (), w| w.tick());
        assert_eq!(got, Err(Error::Timeout));
    }
}
