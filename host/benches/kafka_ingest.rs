//! Benchmark (not a test): points per second consumed from the Kafka test
//! broker into the `local` plugin by a real `heroic` node.
//!
//!   scripts/servers/kafka.sh start
//!   cargo build --release -p heroic-plugin-kafka -p heroic-plugin-local
//!   cargo bench -p heroic --bench kafka_ingest [-- MESSAGES]
//!
//! The messages are produced first; the clock runs from the node's start
//! until every message is committed (so it includes the group join, which
//! is reported separately).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/kafka_common/mod.rs"]
mod kafka_common;

use std::time::{Duration, Instant};

use common::Node;
use kafka_common::*;

fn main() {
    let total: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(500_000);
    require_broker();
    let series = 1000;
    let per_series = total.div_ceil(series);
    let total = series * per_series;
    let topic = unique("bench");
    create_topic(&topic, 4);

    let produce = Instant::now();
    let mut producer = TestProducer::new();
    for i in 0..per_series {
        for s in 0..series {
            producer.send(&topic, &format!("h{s}"), &message("bench", s, i));
        }
    }
    producer.flush();
    println!("produced {total} messages in {:.1} s", produce.elapsed().as_secs_f64());

    let dir = tempfile::tempdir().unwrap();
    let consumer = kafka_consumer("k", "spotify100", &topic, &unique("g"), 2, "batch_size = 5000");
    let start = Instant::now();
    let node = Node::start(dir.path(), &node_config(&consumer, LOCAL_METRICS));
    let first = wait_until("first commit", &node, Duration::from_secs(120), |s| {
        consumer_stat(s, "k", "plugin.messages_committed") > 0.0
    });
    let joined = start.elapsed();
    let first_committed = consumer_stat(&first, "k", "plugin.messages_committed");
    wait_until("every message committed", &node, Duration::from_secs(1800), |s| {
        consumer_stat(s, "k", "plugin.messages_committed") >= total as f64
    });
    let all = start.elapsed();
    let steady = (total as f64 - first_committed) / (all - joined).as_secs_f64();
    println!(
        "consumed {total} points (1 per message, {series} series, 4 partitions, 2 threads) in {:.2} s \
         ({:.2} s to join the group and commit the first batch)",
        all.as_secs_f64(),
        joined.as_secs_f64()
    );
    println!("overall: {:.0} points/s; after the first commit: {steady:.0} points/s", total as f64 / all.as_secs_f64());
    let by_host = points_by_host(&node, "bench", per_series);
    assert_eq!(total_points(&by_host), total, "every point is queryable");
}
