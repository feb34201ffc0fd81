//! Kafka consumer plugin: takes Heroic metric messages from Kafka topics and
//! hands them to the host in batches, at least once.
//!
//! - Each topic is read by `threads_per_topic` threads, each with its own
//!   librdkafka consumer in the group (`group_id`), so partitions spread
//!   over threads (and over nodes of the same group).
//! - Offsets are committed by hand, and only after the host answered `Ok`
//!   to the batch, i.e. after its points are durable in every backend.
//!   Auto-commit is off and cannot be turned on.
//! - When the host answers an error (a backend is failing), the thread
//!   pauses its partitions, keeps serving the group (heartbeats,
//!   rebalances) and retries the same batch with exponential backoff
//!   (`retry_backoff_min_ms` doubling to `retry_backoff_max_ms`). Nothing
//!   after the last durable write is committed.
//! - Rebalances: messages of partitions revoked while waiting are abandoned
//!   (not written, never committed: the new owner reads them again from the
//!   last commit); offsets are only committed for partitions still assigned.
//! - Statistics: consumed, committed, abandoned, ingest errors, retries,
//!   rebalances, lag (from librdkafka's statistics, every
//!   `statistics.interval.ms`), consuming and total threads.
//!
//! Module map:
//! - [`config`]: the config table and the librdkafka properties built from it.
//! - `consumer`: [`KafkaConsumer`], the host's view: starting one thread per
//!   consumer, stopping them, health and statistics.
//! - `worker`: the consuming loop of one thread: fill a batch, hand it to
//!   the host, retry it with backoff while the host refuses it.
//! - `offsets`: messages taken and not yet acknowledged, and the offset
//!   commit after a durable write.
//! - `rebalance`: the rebalance callback and dropping messages of revoked
//!   partitions.
//! - `logging`: librdkafka's callbacks for logs, errors and statistics, and
//!   the rate limit on repeated warnings.
//! - `stats`: the counters and per-thread state behind `statistics()`.
//! - `shared`: the state the consumer and its threads share, its rate
//!   limit on repeated warnings and the statistics read from it (every
//!   other module depends on it; it on none of them).

pub mod config;
mod consumer;
mod logging;
mod offsets;
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
