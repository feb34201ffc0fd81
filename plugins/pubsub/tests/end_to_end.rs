//! The real `heroic` binary with `examples/consumer-pubsub.toml` (the
//! `pubsub` consumer on the emulator, `local` metrics, metadata and suggest
//! in a temp dir): Spotify100 JSON messages published to Pub/Sub, then
//! queried over HTTP.
//!
//! The node harness is the plugin-api testkit's (`testkit::node`); it runs
//! `target/<profile>/heroic`, which must be built first
//! (`cargo build -p heroic -p heroic-plugin-local -p heroic-plugin-pubsub`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use heroic_plugin_api::testkit::node::Node;
use heroic_plugin_api::testkit::sketch::tdigest_verbose;
use serde_json::Value;

/// `examples/consumer-pubsub.toml` itself (not a copy that could drift),
/// with the harness's placeholders and this test's topic and subscription.
fn example_config(topic: &str, subscription: &str, more: &[(&str, String)]) -> String {
    let example = std::fs::read_to_string(workspace_root().join("examples/consumer-pubsub.toml")).unwrap();
    let mut replacements = vec![
        ("listen =", "listen = \"127.0.0.1:{port}\"".to_string()),
        ("dirs =", "dirs = [\"{plugins}\"]".to_string()),
        ("project =", format!("project = \"{PROJECT}\"")),
        ("topic =", format!("topic = \"{topic}\"")),
        ("subscription =", format!("subscription = \"{subscription}\"")),
        ("emulatorEndpoint =", format!("emulatorEndpoint = \"{EMULATOR}\"")),
    ];
    replacements.extend(more.iter().map(|(k, v)| (*k, v.clone())));
    let mut lines: Vec<String> = example.lines().map(str::to_string).collect();
    for (starts, with) in replacements {
        let line = lines.iter_mut().find(|l| l.starts_with(starts));
        *line.unwrap_or_else(|| panic!("examples/consumer-pubsub.toml has no line starting with {starts:?}")) = with;
    }
    lines.join("\n").replace("\"./data/", "\"{dir}/data/")
}

fn require_built() {
    for file in ["heroic", "libheroic_plugin_local.so", "libheroic_plugin_pubsub.so"] {
        let path = profile_dir().join(file);
        assert!(
            path.is_file(),
            "{} is not built: run `cargo build -p heroic -p heroic-plugin-local -p heroic-plugin-pubsub` \
             (same profile and CARGO_TARGET_DIR) first",
            path.display()
        );
    }
}

/// Every point of `key` by host tag.
fn points(node: &Node, key: &str, per_series: usize) -> std::collections::BTreeMap<String, Vec<(i64, f64)>> {
    node.points_by_host(key, T0 - 1, T0 + per_series as i64 * 1000)
}

fn consumer_detail(status: &Value) -> Value {
    status["consumers"]["details"][0].clone()
}

fn acked(node: &Node) -> f64 {
    consumer_detail(&node.get("/status").1)["statistics"]["messages_acked"].as_f64().unwrap_or(0.0)
}

/// Polls `/status` until `check` holds for the acked count.
fn wait_acked(node: &Node, what: &str, timeout: Duration, check: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + timeout;
    while !check(acked(node)) {
        assert!(
            Instant::now() < deadline,
            "{what}: not in time; /status: {}\nlog:\n{}",
            node.get("/status").1,
            node.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every series `h0..h{series}` of `key` holds exactly its points `0..per_series`.
fn assert_all_points(node: &Node, key: &str, series: usize, per_series: usize) {
    let by_host = points(node, key, per_series);
    assert_eq!(by_host.len(), series, "{by_host:?}");
    for s in 0..series {
        let expected: Vec<(i64, f64)> = (0..per_series).map(|i| (T0 + i as i64 * 1000, value(s, i))).collect();
        assert_eq!(by_host[&format!("h{s}")], expected, "series h{s}");
    }
}

/// A node on the example config (with `more` lines replaced) and fresh
/// names; `configure = true` in the example: the node creates both.
fn start_node(name: &str, more: &[(&str, String)]) -> (Node, tempfile::TempDir, String, String) {
    ensure_emulator();
    require_built();
    let (topic, subscription) = (unique(name), unique(&format!("{name}-sub")));
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &example_config(&topic, &subscription, more));
    (node, dir, topic, subscription)
}

fn messages(key: &str, series: usize, per_series: usize) -> Vec<Vec<u8>> {
    (0..per_series).flat_map(|i| (0..series).map(move |s| spotify100(key, s, i))).collect()
}

#[test]
fn heroic_consumes_from_pubsub_and_serves_the_points_over_http() {
    let (mut node, _dir, topic, subscription) = start_node("e2e", &[]);

    let (series, per_series) = (10usize, 200usize);
    let mut sent = messages("e2e", series, per_series);
    for i in 0..5 {
        sent.insert(i * 100, format!("{{\"version\":\"1.1.0\",\"key\":broken {i}").into_bytes());
    }
    publish(&topic, &sent);

    let total = series * per_series;
    wait_acked(&node, "every message acked", Duration::from_secs(120), |n| n >= sent.len() as f64);
    assert_all_points(&node, "e2e", series, per_series);

    let st = node.get("/status").1;
    let detail = consumer_detail(&st);
    assert_eq!(detail["plugin"], "pubsub", "{st}");
    assert_eq!(detail["decodeErrors"]["malformed"], 5, "{st}");
    assert_eq!(detail["statistics"]["messages_invalid"], 5.0, "{st}");
    assert_eq!(detail["pointsWritten"], total, "{st}");
    assert_eq!(st["consumers"]["ok"], true, "{st}");

    // SIGTERM: the consumer stops first, the node exits cleanly.
    let exit = node.stop().expect("heroic was running");
    assert!(exit.success(), "heroic exited with {exit}; log:\n{}", node.log());
    assert_eq!(available(&subscription), 0, "everything was acked");
}

/// SIGKILL while consuming, then a restart: every published point is
/// there (what the killed node held comes back after the ack deadline).
#[test]
fn a_crash_mid_run_loses_nothing() {
    let (mut node, _dir, topic, _) = start_node("crash", &[("ackDeadlineSeconds =", "ackDeadlineSeconds = 10".into())]);

    let (series, per_series) = (20usize, 300usize);
    let sent = messages("crash", series, per_series);
    // Published in the background, paced, so that the crash hits a live run.
    let publisher = {
        let topic = topic.clone();
        std::thread::spawn(move || {
            for chunk in sent.chunks(500) {
                publish(&topic, chunk);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    wait_acked(&node, "some messages acked", Duration::from_secs(60), |n| n >= 1000.0);
    let before = acked(&node);
    node.crash();
    publisher.join().unwrap();
    assert!(before < (series * per_series) as f64, "the crash came after everything was consumed ({before})");
    node.restart();
    wait_acked(&node, "the rest acked", Duration::from_secs(120), |n| n > 0.0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while points(&node, "crash", per_series).values().map(Vec::len).sum::<usize>() < series * per_series {
        assert!(Instant::now() < deadline, "points missing after the restart; /status: {}", node.get("/status").1);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_all_points(&node, "crash", series, per_series);
}

/// A node on the example config with `metrics` (a `[[metrics]]` block) in
/// place of the example's local metric backend, and a dead-letter file.
/// Answers the node, its dir, the topic and subscription, and the file.
fn start_with_metrics(name: &str, metrics: &str) -> (Node, tempfile::TempDir, String, String, std::path::PathBuf) {
    let library = metrics.split('"').nth(1).map(|p| profile_dir().join(format!("libheroic_plugin_{p}.so")));
    let library = library.expect("a [[metrics]] block naming its plugin");
    assert!(library.is_file(), "{} is not built: run `cargo build --workspace`", library.display());
    ensure_emulator();
    require_built();
    let (topic, subscription) = (unique(name), unique(&format!("{name}-sub")));
    let dir = tempfile::tempdir().unwrap();
    let dead_letters = dir.path().join("dead-letters.jsonl");
    let config = example_config(
        &topic,
        &subscription,
        &[("retryBackoffMaxMs =", format!("retryBackoffMaxMs = 500\ndeadLetterFile = \"{}\"", dead_letters.display()))],
    );
    let local = "[[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{dir}/data/metrics\"";
    assert!(config.contains(local), "the example's metrics block changed:\n{config}");
    let node = Node::start(dir.path(), &config.replace(local, metrics));
    (node, dir, topic, subscription, dead_letters)
}

/// The one line of a dead-letter file.
fn the_dead_letter(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the dead-letter file");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    lines.into_iter().next().unwrap()
}

/// A poison message between good ones, on a node whose metric backend (the
/// `faulty` fixture) refuses its series for good: the good ones are stored,
/// the poison one is in the dead-letter file, everything is acked (nothing
/// redelivered without end), and `/status` counts it.
#[test]
fn a_poison_message_is_dead_lettered_and_the_rest_stored() {
    let (mut node, _dir, topic, subscription, dead_letters) = start_with_metrics(
        "poison",
        "[[metrics]]\nplugin = \"faulty\"\n[metrics.config]\ninvalid_on_tag = \"host=poison\"",
    );

    let mut sent = messages("poison", 5, 40);
    let poison = spotify100_host("poison", "poison", 7);
    sent.insert(100, poison.clone());
    publish(&topic, &sent);

    wait_acked(&node, "every message acked", Duration::from_secs(120), |n| n >= sent.len() as f64);
    assert_all_points(&node, "poison", 5, 40);
    let st = node.get("/status").1;
    let detail = consumer_detail(&st);
    assert_eq!(detail["statistics"]["messages_dead_lettered"], 1.0, "{st}");
    assert_eq!(detail["statistics"]["messages_nacked"], 0.0, "{st}");
    assert!(detail["writeErrors"].as_u64().unwrap() >= 1, "{st}");

    let letter = the_dead_letter(&dead_letters);
    assert_eq!(letter["kind"], "invalid input");
    assert!(letter["reason"].as_str().unwrap().contains("refused on request"), "{letter}");
    assert!(node.log().contains("dead-lettered it and acknowledging it"), "{}", node.log());

    let exit = node.stop().expect("heroic was running");
    assert!(exit.success(), "heroic exited with {exit}; log:\n{}", node.log());
    assert_eq!(available(&subscription), 0, "everything was acked");
}

/// A Spotify100 v1 message whose host tag is `host` itself.
fn spotify100_host(key: &str, host: &str, i: usize) -> Vec<u8> {
    serde_json::json!({"version": "1.1.0", "key": key, "host": host, "time": T0 + i as i64 * 1000, "value": 1.0})
        .to_string()
        .into_bytes()
}

/// The same with a real backend: Bigtable (its emulator) refuses a series
/// whose row key is over its limit for good. The good messages are stored
/// in Bigtable, the oversized one is dead-lettered, nothing is stuck.
#[test]
fn a_bigtable_row_key_over_the_limit_is_dead_lettered_and_the_rest_stored() {
    heroic_plugin_api::testkit::servers::ensure_server(
        "Bigtable emulator",
        "127.0.0.1:8086",
        &workspace_root().join("scripts/servers/bigtable.sh"),
    );
    let metrics = format!(
        "[[metrics]]\nplugin = \"bigtable\"\nconfigure = true\n[metrics.config]\nproject = \"p-test\"\n\
         instance = \"i-test\"\ntable = \"{}\"\nemulatorEndpoint = \"127.0.0.1:8086\"",
        unique("t")
    );
    let (mut node, _dir, topic, subscription, dead_letters) = start_with_metrics("bigkey", &metrics);

    let mut sent = messages("bigkey", 4, 30);
    let huge_host = "h".repeat(5_000);
    sent.insert(50, spotify100_host("bigkey", &huge_host, 3));
    publish(&topic, &sent);

    wait_acked(&node, "every message acked", Duration::from_secs(120), |n| n >= sent.len() as f64);
    assert_all_points(&node, "bigkey", 4, 30);
    let st = node.get("/status").1;
    assert_eq!(consumer_detail(&st)["statistics"]["messages_dead_lettered"], 1.0, "{st}");
    let letter = the_dead_letter(&dead_letters);
    assert_eq!(letter["kind"], "invalid input", "{letter}");
    assert!(letter["reason"].as_str().unwrap().contains("row key"), "{letter}");
    let exit = node.stop().expect("heroic was running");
    assert!(exit.success(), "heroic exited with {exit}; log:\n{}", node.log());
    assert_eq!(available(&subscription), 0, "everything was acked");
}

/// Spotify100 v2 distribution values over Pub/Sub: stored as distribution
/// points and merged by `tdigest`; a value that is no t-digest is counted
/// as invalid, acknowledged, and the rest stored.
#[test]
fn distribution_values_are_stored_and_a_bad_one_skipped() {
    use base64::Engine as _;
    use serde_json::json;
    let (node, _dir, topic, _subscription) = start_node("dist", &[]);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dist = |host: &str, t: i64, value: &str| {
        json!({"version": "2.0.0", "key": "latency", "host": host, "time": T0 + t,
               "value": {"distributionValue": value}})
        .to_string()
        .into_bytes()
    };
    let low: Vec<f64> = (1..=100).map(f64::from).collect();
    let sent = vec![
        dist("a", 100, &b64(&tdigest_verbose(&low[..50]))),
        dist("a", 200, "AAE="),
        dist("b", 600, &b64(&tdigest_verbose(&low[50..]))),
        spotify100("dist", 0, 0),
    ];
    publish(&topic, &sent);
    wait_acked(&node, "every message acked", Duration::from_secs(120), |n| n >= sent.len() as f64);

    let st = node.get("/status").1;
    let detail = consumer_detail(&st);
    assert_eq!(detail["decodeErrors"]["invalid"], 1, "{st}");
    assert_eq!(detail["distributionsWritten"], 2, "{st}");
    assert_eq!(detail["pointsWritten"], 1, "{st}");

    let query = |aggregation: Value| {
        let mut body = json!({"filter": ["key", "latency"], "features": ["-shift_range"],
                              "range": {"type": "absolute", "start": T0, "end": T0 + 1000}});
        if aggregation.is_null() {
            body["source"] = json!("distributionPoints");
        } else {
            body["aggregation"] = aggregation;
        }
        let (status, reply) = node.post("/query/metrics", &body);
        assert_eq!(status, 200, "{reply}");
        reply
    };
    let raw = query(Value::Null);
    let groups = raw["result"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{raw}");
    let a = groups.iter().find(|g| g["tags"]["host"] == "a").unwrap();
    assert_eq!(a["values"], json!([{"value": b64(&tdigest_verbose(&low[..50])), "timestamp": T0 + 100}]), "{raw}");

    let merged = query(json!({"type": "tdigest", "size": "1s"}));
    let p50 = merged["result"].as_array().unwrap().iter().find(|g| g["tags"]["tdigeststat"] == "P50").cloned();
    let p50 = p50.unwrap_or_else(|| panic!("no P50: {merged}"));
    let v = p50["values"][0][1].as_f64().unwrap();
    assert!((v - 50.5).abs() <= 2.0, "P50 of 1..=100 over two series: {v}");
}
