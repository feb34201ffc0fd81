//! A Pub/Sub consumer node whose data directory fills up while it consumes:
//! it stops acknowledging (the messages stay in the subscription), says so
//! in `/status`, and once space is freed it stores every published point
//! without a restart.
//!
//! The real `heroic` binary on the emulator, with `local` backends on a
//! small tmpfs mounted by the test (`testkit::disk`: needs the right to
//! mount, as root in CI has). Build first:
//! `cargo build -p heroic -p heroic-plugin-local -p heroic-plugin-pubsub`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use heroic_plugin_api::testkit::disk::{fill, Tmpfs};
use heroic_plugin_api::testkit::node::Node;

const SERIES: usize = 8;

fn config(topic: &str, subscription: &str, data: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{d}/m\"\nflush_points = 2000\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{d}/md\"\n\
         [[suggest]]\nplugin = \"local\"\n[suggest.config]\ndata_dir = \"{d}/s\"\n\
         [[consumers]]\nplugin = \"pubsub\"\n[consumers.config]\nproject = \"{PROJECT}\"\ntopic = \"{topic}\"\n\
         subscription = \"{subscription}\"\nconfigure = true\nemulatorEndpoint = \"{EMULATOR}\"\nthreads = 2\n\
         ackDeadlineSeconds = 10\nretryBackoffMinMs = 100\nretryBackoffMaxMs = 1000\n",
        d = data.display()
    )
}

/// Messages `from..to` of every series.
fn messages(from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to).flat_map(|i| (0..SERIES).map(move |s| spotify100("disk", s, i))).collect()
}

/// Waits until every series holds exactly its points `0..per_series`.
fn wait_stored(node: &Node, per_series: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let by_host = node.points_by_host("disk", T0 - 1, T0 + per_series as i64 * 1000);
        let complete = (0..SERIES).all(|s| {
            let expected: Vec<(i64, f64)> = (0..per_series).map(|i| (T0 + i as i64 * 1000, value(s, i))).collect();
            by_host.get(&format!("h{s}")) == Some(&expected)
        });
        if complete {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every point stored in time: {} of {} series complete; /status: {}\nlog:\n{}",
            (0..SERIES).filter(|s| by_host.get(&format!("h{s}")).is_some_and(|p| p.len() == per_series)).count(),
            SERIES,
            node.get("/status").1,
            node.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_full_disk_during_consumption_delays_points_but_loses_none() {
    ensure_emulator();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_mount) = Tmpfs::mount(&data, "24m") else { return };
    let (topic, subscription) = (unique("disk"), unique("disk-sub"));
    let node = Node::start(dir.path(), &config(&topic, &subscription, &data));

    publish(&topic, &messages(0, 100));
    wait_stored(&node, 100, Duration::from_secs(60));

    fill(&data.join("filler"));
    publish(&topic, &messages(100, 400));
    // The consumer keeps failing to write: nothing more is acknowledged,
    // and `/status` says why.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, status) = node.get("/status");
        if code == 503 && status["backends"]["ok"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "/status still healthy on a full disk: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(available(&subscription) > 0 || node.get("/status").1["consumers"]["writeErrors"].as_u64() > Some(0));

    std::fs::remove_file(data.join("filler")).unwrap();
    wait_stored(&node, 400, Duration::from_secs(90));
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.get("/status").0 != 200 {
        assert!(Instant::now() < deadline, "still unhealthy after space was freed: {}", node.get("/status").1);
        std::thread::sleep(Duration::from_millis(200));
    }
}
