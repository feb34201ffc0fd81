//! A node whose data directory fills up: writes are refused with 503 and
//! `Retry-After` (never 500, never acknowledged without being stored),
//! `/status` says why, and once space is freed writing resumes without a
//! restart, with every acknowledged point readable, before and after one.
//!
//! The data directory is a small tmpfs mounted by the test (see
//! `testkit::disk`: it needs the right to mount, as root in CI has).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Node;
use heroic_plugin_api::testkit::disk::{fill, Tmpfs};
use serde_json::{json, Value};

fn write(node: &Node, host: &str, points: &[(i64, f64)]) -> (u16, Option<String>, Value) {
    let body = json!({"series": {"key": "disk", "tags": {"host": host}}, "data": {"type": "points", "data": points}});
    let resp = reqwest::blocking::Client::new()
        .post(node.url("/write"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().unwrap();
    (status, retry_after, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

type Points = BTreeMap<String, Vec<(i64, f64)>>;

fn batch(i: i64) -> (String, Vec<(i64, f64)>) {
    (format!("h{}", i % 4), (0..200).map(|j| (1_000 + i * 1_000 + j, (i * 1_000 + j) as f64)).collect())
}

fn stored(node: &Node) -> Points {
    node.points_by_host("disk", 0, 10_000_000)
}

// A file system made read-only would be the other outage worth testing,
// but Linux refuses to remount one read-only while files on it are open
// for writing, which the node's are.

#[test]
fn a_full_disk_refuses_writes_until_space_is_freed_then_resumes_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_mount) = Tmpfs::mount(&data, "24m") else { return };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{d}/m\"\nflush_points = 4000\n\
         head_limit_points = 40000\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{d}/md\"\n\
         [[suggest]]\nplugin = \"local\"\n[suggest.config]\ndata_dir = \"{d}/s\"\n",
        d = data.display()
    );
    let mut node = Node::start(dir.path(), &config);
    let mut acked: Points = BTreeMap::new();
    let mut ack = |host: String, points: Vec<(i64, f64)>| acked.entry(host).or_default().extend(points);

    for i in 0..20 {
        let (host, points) = batch(i);
        let (status, _, reply) = write(&node, &host, &points);
        assert_eq!(status, 200, "{reply}");
        ack(host, points);
    }

    fill(&data.join("filler"));
    let mut refused = Vec::new();
    for i in 20..40 {
        let (host, points) = batch(i);
        let (status, retry_after, reply) = write(&node, &host, &points);
        match status {
            200 => ack(host, points),
            503 => {
                assert!(retry_after.is_some(), "503 without Retry-After: {reply}");
                refused.push((host, points));
            }
            other => panic!("a write during the outage answered {other}: {reply}"),
        }
    }
    assert!(!refused.is_empty(), "no write was refused during the outage");
    let (code, status) = node.get("/status");
    assert_eq!(code, 503, "{status}");
    assert_eq!(status["backends"]["ok"], false, "{status}");
    let message = status["components"].as_array().unwrap().iter().find(|c| c["role"] == "metrics").unwrap()["message"]
        .to_string();
    assert!(message.contains("No space left"), "{message}");

    std::fs::remove_file(data.join("filler")).unwrap();
    // A client retrying its refused writes gets through without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (host, points) in refused {
        loop {
            let (status, _, reply) = write(&node, &host, &points);
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "{reply}");
            assert!(Instant::now() < deadline, "writes still refused after space was freed: {reply}");
            std::thread::sleep(Duration::from_millis(200));
        }
        ack(host, points);
    }
    while node.get("/status").0 != 200 {
        assert!(Instant::now() < deadline, "still unhealthy: {}", node.get("/status").1);
        std::thread::sleep(Duration::from_millis(200));
    }
    let sorted = |mut p: Points| {
        p.values_mut().for_each(|v| v.sort_by_key(|x| x.0));
        p
    };
    let acked = sorted(acked);
    assert_eq!(stored(&node), acked);
    node.restart();
    assert_eq!(stored(&node), acked, "after a restart");
}
