//! Kafka consumer plugin: takes Heroic metric messages from Kafka topics and
//! hands them to the host in batches, at least once.
//!
//! - Each topic is read by `threads_per_topic` threads, each with its own
//!   librdkafka consumer in the group (`group_id`), so partitions spread
//!   over threads (and over nodes of the same group).
//! - Offsets are committed by hand, and only after the host answered `Ok`
//!   to the batch, i.e. after its points are durable in every backend.
//!   Auto-commit is off and cannot be turned on.
//! - When the host answers a transient error (a backend down), the thread
//!   pauses its partitions, keeps serving the group (heartbeats,
//!   rebalances) and retries the same batch with exponential backoff
//!   (`retry_backoff_min_ms` doubling to `retry_backoff_max_ms`).
//! - When it answers a permanent error (a message that can never be
//!   stored, a backend panicking on it), the batch is bisected down to the
//!   messages at fault; each is produced to `dead_letter_topic` or appended
//!   to the dead-letter file, then committed past.
//! - A partition's commit never passes a message that is not durable.
//!   Messages in flight per partition are bounded
//!   (`max_in_flight_per_partition`): a full partition is paused.
//! - Rebalances: a revoked partition's messages in flight are dropped (not
//!   written, never committed: the new owner reads them again from the last
//!   commit); a partition assigned again starts clean.
//! - Statistics: consumed, committed, abandoned, dead-lettered, ingest
//!   errors, rebalances, messages in flight, partitions paused, lag (from
//!   librdkafka's statistics, every `statistics.interval.ms`), consuming
//!   and total threads.
//!
//! Module map:
//! - [`config`]: the config table and the librdkafka properties built from it.
//! - `consumer`: [`KafkaConsumer`], the host's view: starting one thread per
//!   consumer, stopping them, health and statistics.
//! - `worker`: the consuming loop of one thread: fill a batch, hand it to
//!   the host, retry it with backoff while the host refuses it as
//!   transient, bisect it when the host refuses it for good.
//! - `offsets`: messages in flight per partition, and how far each
//!   partition may be committed (pure bookkeeping, unit-tested).
//! - `pausing`: pausing and resuming partitions (outage, in-flight bound),
//!   and the offset commit.
//! - `dead_letter`: the dead-letter destination (topic or file).
//! - `rebalance`: the rebalance callback, updating the thread's offsets.
//! - `logging`: librdkafka's callbacks for logs, errors and statistics of
//!   a consuming thread.
//! - `log_forward`: librdkafka's log lines to `tracing`, for every client.
//! - `stats`: the counters and per-thread state behind `statistics()`.
//! - `shared`: the state the consumer and its threads share, its rate
//!   limit on repeated warnings and the statistics read from it.

pub mod config;
mod consumer;
pub mod dead_letter;
mod log_forward;
mod logging;
mod offsets;
mod pausing;
mod rebalance;
mod shared;
mod stats;
mod worker;

pub use config::Config;
pub use consumer::KafkaConsumer;

heroic_plugin_api::export_plugin! {
    name: "kafka",
    consumer: KafkaConsumer,
}
