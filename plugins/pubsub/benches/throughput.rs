//! Consumer throughput against the emulator: publishes N Spotify100 messages
//! (`cargo bench -p heroic-plugin-pubsub --bench throughput [-- N]`, default
//! 20000), then times a consumer (8 loops, the test sink of the tests as the
//! host) until every message is acked.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::harness::{start, stat, wait_until, SinkState};
use common::*;

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    let (topic, sub) = (unique("bench"), unique("bench-sub"));
    create(&topic, &sub, 60);
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| spotify100("bench", i % 1000, i / 1000)).collect();
    let t = Instant::now();
    publish(&topic, &payloads);
    let publish_time = t.elapsed();

    let state = Arc::new(SinkState::default());
    let t = Instant::now();
    let consumer = start(config(&sub, serde_json::json!({"threads": 8})), &state);
    wait_until("every message acked", Duration::from_secs(600), &consumer, || {
        stat(&consumer, "messages_acked") >= n as u64
    });
    let consume_time = t.elapsed();
    futures::executor::block_on(consumer.stop()).unwrap();
    assert_eq!(state.durable_set().len(), n);
    println!(
        "{n} messages: published in {publish_time:.2?} (REST), consumed and acked in {consume_time:.2?} = {:.0} messages/s \
         ({} batches)",
        n as f64 / consume_time.as_secs_f64(),
        stat(&consumer, "batches_acked")
    );
}
