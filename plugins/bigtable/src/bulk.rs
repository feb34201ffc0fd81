//! The bulk writer: Heroic's bulk mutations, except that an acknowledged
//! write is durable. Concurrent writes queue their row entries into one
//! buffer; a background task sends the buffer in MutateRows batches; each
//! write resolves once *its* entries were applied, with the errors of its
//! own entries only.
//!
//! When a batch leaves: when a call slot (`writeConcurrency`) is free and
//! the buffer holds `batchSize` mutations, or its oldest entry has waited
//! the flush interval, or the writer is shutting down. With the default
//! interval of 0 a write that finds the writer idle leaves at once, and
//! batches form by themselves while every slot is busy (group commit): the
//! more load, the larger the batches, and no write waits for a timer.
//!
//! Memory is bounded by `maxBufferedMutations`: a write first takes room
//! for its mutations (a semaphore, fair), which it gives back once all its
//! entries were answered; writers wait while there is none.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutate_rows_request::Entry;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::config::BigtableConfig;
use crate::error::{BigtableError, EntryTally};
use crate::stats::Stats;

/// When batches leave and how many may be in flight.
#[derive(Clone, Copy, Debug)]
pub struct BulkSettings {
    /// Mutations of a full batch; a batch never holds more.
    pub batch_size: usize,
    /// How long the oldest buffered entry may wait for its batch to fill.
    pub flush_interval: Duration,
    /// MutateRows calls in flight at once.
    pub concurrency: usize,
    /// Mutations accepted and not answered yet, at most.
    pub max_buffered: usize,
}

impl BulkSettings {
    pub fn from_config(c: &BigtableConfig) -> Self {
        BulkSettings {
            batch_size: c.batch_size(),
            flush_interval: c.flush_interval(),
            concurrency: c.write_concurrency,
            max_buffered: c.max_buffered_mutations(),
        }
    }
}

/// One write's entries in the writer: answered when none is pending.
struct Job {
    progress: Mutex<Progress>,
    queued_at: Instant,
    /// The write's room in the buffer, given back when the job is dropped,
    /// i.e. once every entry was answered.
    _room: OwnedSemaphorePermit,
}

struct Progress {
    pending: usize,
    tally: EntryTally,
    answer: Option<oneshot::Sender<Result<(), BigtableError>>>,
}

impl Job {
    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One of the job's entries was answered; the last one answers the write.
    fn settle(&self, failure: Option<BigtableError>) {
        let mut progress = self.lock();
        progress.tally.add(failure);
        progress.pending -= 1;
        if progress.pending == 0 {
            let tally = std::mem::replace(&mut progress.tally, EntryTally::new(0));
            if let Some(answer) = progress.answer.take() {
                // The writer may have stopped waiting (its request was
                // cancelled); the mutations are applied all the same.
                let _ = answer.send(tally.finish());
            }
        }
    }

    /// The job's entry was cut in two at a batch boundary.
    fn split(&self) {
        let mut progress = self.lock();
        progress.pending += 1;
        progress.tally.grow();
    }
}

/// An entry waiting in the buffer, with the write it belongs to.
struct Queued {
    entry: Entry,
    job: Arc<Job>,
}

/// The handle writes go through; the flusher task owns the buffer.
pub struct Bulk {
    /// `None` once shut down.
    queue: Mutex<Option<mpsc::UnboundedSender<Vec<Queued>>>>,
    room: Arc<Semaphore>,
    max_buffered: usize,
    flusher: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Stats>,
}

impl Bulk {
    /// Starts the flusher on the current tokio runtime.
    pub fn start(client: Arc<Client>, settings: BulkSettings, stats: Arc<Stats>) -> Self {
        // Unbounded: the semaphore bounds what is queued.
        let (queue, jobs) = mpsc::unbounded_channel();
        let flusher = tokio::spawn(flush_loop(client, settings, stats.clone(), jobs));
        Bulk {
            queue: Mutex::new(Some(queue)),
            room: Arc::new(Semaphore::new(settings.max_buffered)),
            max_buffered: settings.max_buffered,
            flusher: tokio::sync::Mutex::new(Some(flusher)),
            stats,
        }
    }

    /// Queues one write's entries and resolves once all of them were
    /// answered: `Ok` when every one was applied.
    pub async fn submit(&self, entries: Vec<Entry>) -> Result<(), BigtableError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mutations: usize = entries.iter().map(|e| e.mutations.len()).sum();
        // A write larger than the whole buffer takes all of it: it waits for
        // an empty buffer rather than forever.
        let wanted = u32::try_from(mutations.min(self.max_buffered)).unwrap_or(u32::MAX);
        let room = match self.room.clone().try_acquire_many_owned(wanted) {
            Ok(room) => room,
            Err(TryAcquireError::NoPermits) => {
                self.stats.bulk_waits.inc();
                tracing::debug!(mutations, "bulk writer buffer full, waiting for room");
                self.room.clone().acquire_many_owned(wanted).await.map_err(|_| BigtableError::ShutDown)?
            }
            Err(TryAcquireError::Closed) => return Err(BigtableError::ShutDown),
        };
        let (answer, answered) = oneshot::channel();
        let job = Arc::new(Job {
            progress: Mutex::new(Progress {
                pending: entries.len(),
                tally: EntryTally::new(entries.len()),
                answer: Some(answer),
            }),
            queued_at: Instant::now(),
            _room: room,
        });
        let queued: Vec<Queued> = entries.into_iter().map(|entry| Queued { entry, job: job.clone() }).collect();
        drop(job);
        self.stats.buffered_mutations.add(mutations as i64);
        let sent = match &*self.queue.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(queue) => queue.send(queued).is_ok(),
            None => false,
        };
        if !sent {
            self.stats.buffered_mutations.sub(mutations as i64);
            return Err(BigtableError::ShutDown);
        }
        // A dropped answer means the flusher died with the entries unsent.
        answered.await.unwrap_or(Err(BigtableError::BulkStopped))
    }

    /// Refuses new writes, sends everything buffered at once and waits for
    /// the answers. Safe to call more than once.
    pub async fn shutdown(&self) {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.room.close();
        if let Some(flusher) = self.flusher.lock().await.take() {
            if let Err(e) = flusher.await {
                tracing::error!(error = %e, "the bigtable bulk writer failed");
            }
        }
    }
}

/// Takes the first batch off the buffer: whole entries up to `batch_size`
/// mutations, cutting the last one so that a full batch is exactly full.
fn take_batch(buffer: &mut VecDeque<Queued>, batch_size: usize) -> Vec<Queued> {
    let mut batch = Vec::new();
    let mut size = 0;
    while let Some(mut next) = buffer.pop_front() {
        let room = batch_size - size;
        if next.entry.mutations.len() > room {
            // The row's cells are distinct, so its two halves may be applied
            // in any order, in different calls.
            let rest = next.entry.mutations.split_off(room);
            next.job.split();
            let row_key = next.entry.row_key.clone();
            buffer.push_front(Queued {
                entry: Entry { row_key, mutations: rest, idempotency: None },
                job: next.job.clone(),
            });
        }
        size += next.entry.mutations.len();
        batch.push(next);
        if size == batch_size {
            break;
        }
    }
    batch
}

/// Sends one batch; answers each entry's job.
async fn send(client: &Client, stats: &Stats, batch: Vec<Queued>) {
    let (entries, jobs): (Vec<Entry>, Vec<(Arc<Job>, usize)>) = batch
        .into_iter()
        .map(|q| {
            let size = q.entry.mutations.len();
            (q.entry, (q.job, size))
        })
        .unzip();
    let outcome = client.mutate_rows_each(entries).await;
    for ((job, size), failure) in jobs.into_iter().zip(outcome) {
        stats.buffered_mutations.sub(size as i64);
        job.settle(failure);
    }
}

/// The flusher task: owns the buffer, decides when batches leave, and ends
/// once the queue is closed and everything was answered.
async fn flush_loop(
    client: Arc<Client>,
    settings: BulkSettings,
    stats: Arc<Stats>,
    mut jobs: mpsc::UnboundedReceiver<Vec<Queued>>,
) {
    let mut buffer: VecDeque<Queued> = VecDeque::new();
    let mut buffered = 0usize;
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    let add = |buffer: &mut VecDeque<Queued>, buffered: &mut usize, queued: Vec<Queued>| {
        *buffered += queued.iter().map(|q| q.entry.mutations.len()).sum::<usize>();
        buffer.extend(queued);
    };
    loop {
        // Take in every write queued meanwhile, so that concurrent writes
        // share the next batch.
        while open {
            match jobs.try_recv() {
                Ok(queued) => add(&mut buffer, &mut buffered, queued),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        while in_flight.len() < settings.concurrency {
            let Some(oldest) = buffer.front().map(|q| q.job.queued_at) else { break };
            let due = !open || buffered >= settings.batch_size || oldest.elapsed() >= settings.flush_interval;
            if !due {
                break;
            }
            let batch = take_batch(&mut buffer, settings.batch_size);
            let size: usize = batch.iter().map(|q| q.entry.mutations.len()).sum();
            buffered -= size;
            stats.bulk_flushes.inc();
            tracing::debug!(
                entries = batch.len(),
                mutations = size,
                in_flight = in_flight.len(),
                "bulk writer sends a batch"
            );
            in_flight.push(send(&client, &stats, batch));
        }
        if !open && buffer.is_empty() && in_flight.is_empty() {
            return;
        }
        // Wait for a new write, an answered call, or the oldest entry's
        // flush interval (only worth waking for with a free slot).
        let flush_at = buffer
            .front()
            .filter(|_| in_flight.len() < settings.concurrency)
            .map(|q| tokio::time::Instant::from_std(q.job.queued_at + settings.flush_interval));
        tokio::select! {
            queued = jobs.recv(), if open => match queued {
                Some(queued) => add(&mut buffer, &mut buffered, queued),
                None => open = false,
            },
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            () = sleep_until(flush_at), if flush_at.is_some() => {}
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::Mutation;

    fn queued(job: &Arc<Job>, key: &str, cells: usize) -> Queued {
        Queued {
            entry: Entry {
                row_key: key.as_bytes().to_vec(),
                mutations: vec![Mutation::default(); cells],
                idempotency: None,
            },
            job: job.clone(),
        }
    }

    fn job(entries: usize) -> (Arc<Job>, oneshot::Receiver<Result<(), BigtableError>>) {
        let (answer, answered) = oneshot::channel();
        let room = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let progress = Progress { pending: entries, tally: EntryTally::new(entries), answer: Some(answer) };
        (Arc::new(Job { progress: Mutex::new(progress), queued_at: Instant::now(), _room: room }), answered)
    }

    #[test]
    fn batches_are_exactly_full_and_cut_entries_stay_with_their_job() {
        let (a, _) = job(2);
        let mut buffer: VecDeque<Queued> = [queued(&a, "r1", 3), queued(&a, "r2", 4)].into_iter().collect();
        let sizes = |batch: &[Queued]| batch.iter().map(|q| q.entry.mutations.len()).collect::<Vec<_>>();
        assert_eq!(sizes(&take_batch(&mut buffer, 5)), vec![3, 2]);
        let rest = take_batch(&mut buffer, 5);
        assert_eq!(sizes(&rest), vec![2]);
        assert_eq!(rest[0].entry.row_key, b"r2", "the cut half keeps its row key");
        assert!(buffer.is_empty());
        assert_eq!(a.lock().pending, 3, "the cut made one more entry to answer");
    }

    #[test]
    fn a_job_is_answered_by_its_last_entry_with_its_own_failures() {
        let (a, mut answered) = job(3);
        a.settle(None);
        a.settle(Some(BigtableError::Protocol("boom".into())));
        assert!(answered.try_recv().is_err(), "not answered while an entry is pending");
        a.settle(None);
        match answered.try_recv().unwrap() {
            Err(BigtableError::PartialWrite { failed: 1, total: 3, first, .. }) => assert!(first.contains("boom")),
            other => panic!("unexpected answer {other:?}"),
        }
    }

    #[test]
    fn a_job_whose_entries_all_failed_keeps_their_error() {
        let (a, mut answered) = job(1);
        a.settle(Some(BigtableError::ShutDown));
        assert!(matches!(answered.try_recv().unwrap(), Err(BigtableError::ShutDown)));
    }
}
