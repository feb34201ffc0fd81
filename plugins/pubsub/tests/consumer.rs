//! The plugin against the real Pub/Sub emulator, loaded through the ABI,
//! with the test sink of `common::harness` as the host's write path.

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::harness::*;
use common::*;
use serde_json::json;

fn payloads(key: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| spotify100(key, i % 10, i)).collect()
}

/// A topic with `n` messages of `key` and a subscription on it (ack
/// deadline 10 s), and a sink that holds every batch until the gate opens.
fn gated_setup(key: &str, n: usize) -> (String, Vec<Vec<u8>>, Arc<tokio::sync::Semaphore>, Arc<SinkState>) {
    let (topic, sub) = setup(10);
    let sent = payloads(key, n);
    publish(&topic, &sent);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let state = Arc::new(SinkState { gate: Some(gate.clone()), ..Default::default() });
    (sub, sent, gate, state)
}

fn setup(ack_deadline: u32) -> (String, String) {
    let (topic, sub) = (unique("topic"), unique("sub"));
    create(&topic, &sub, ack_deadline);
    (topic, sub)
}

#[test]
fn every_message_is_acked_exactly_once_after_a_durable_write() {
    let (topic, sub) = setup(60);
    let sent = payloads("once", 1500);
    publish(&topic, &sent);
    let state = Arc::new(SinkState::default());
    let consumer = start(config(&sub, json!({"threads": 4})), &state);
    wait_until("every message acked", Duration::from_secs(60), &consumer, || stat(&consumer, "messages_acked") >= 1500);
    futures::executor::block_on(consumer.stop()).unwrap();

    let durable = state.durable_set();
    assert_eq!(durable.len(), 1500, "every message written");
    assert!(durable.values().all(|n| *n == 1), "a message was written twice");
    assert!(sent.iter().all(|p| durable.contains_key(p)));
    assert_eq!(stat(&consumer, "messages_acked"), 1500);
    assert_eq!(stat(&consumer, "messages_received"), 1500, "nothing redelivered");
    assert_eq!(stat(&consumer, "messages_outstanding"), 0);
    assert_eq!(available(&sub), 0, "the subscription is drained");
    assert!(consumer.health().ok);
}

#[test]
fn refused_batches_are_nacked_and_redelivered_with_backoff() {
    let (topic, sub) = setup(60);
    let sent = payloads("refused", 300);
    let state = Arc::new(SinkState::default());
    state.fail.store(true, Ordering::SeqCst);
    let consumer = start(config(&sub, json!({"threads": 2, "maxMessagesPerPull": 50})), &state);
    publish(&topic, &sent);
    wait_until("nacks", Duration::from_secs(30), &consumer, || stat(&consumer, "messages_nacked") >= 100);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stat(&consumer, "messages_acked"), 0, "nothing is acked while the backend fails");
    let refused = state.refused.load(Ordering::SeqCst);
    // Backoff 50 ms doubling to 500 ms: a spinning loop would refuse hundreds.
    assert!(refused < 60, "retries back off instead of spinning: {refused} refused batches");
    assert_eq!(stat(&consumer, "consuming_threads"), 0, "the loops pause after a refused batch");

    state.fail.store(false, Ordering::SeqCst);
    wait_until("everything acked", Duration::from_secs(60), &consumer, || stat(&consumer, "messages_acked") >= 300);
    futures::executor::block_on(consumer.stop()).unwrap();
    let durable = state.durable_set();
    assert_eq!(durable.len(), 300, "nothing lost");
    assert!(sent.iter().all(|p| durable.contains_key(p)));
    assert_eq!(stat(&consumer, "ingest_errors"), refused);
    assert_eq!(available(&sub), 0);
}

#[test]
fn malformed_messages_are_counted_and_acked_with_their_batch() {
    let (topic, sub) = setup(60);
    let mut sent = payloads("malformed", 200);
    for i in 0..20 {
        sent.insert(i * 10 + 3, format!("{{not json {i}").into_bytes());
    }
    publish(&topic, &sent);
    let state = Arc::new(SinkState::default());
    let consumer = start(config(&sub, json!({"threads": 2})), &state);
    wait_until("every message acked", Duration::from_secs(60), &consumer, || stat(&consumer, "messages_acked") >= 220);
    std::thread::sleep(Duration::from_millis(500));
    futures::executor::block_on(consumer.stop()).unwrap();
    assert_eq!(stat(&consumer, "messages_invalid"), 20);
    assert_eq!(stat(&consumer, "messages_acked"), 220, "malformed messages are acked, not redelivered");
    assert_eq!(stat(&consumer, "messages_received"), 220);
    assert_eq!(state.durable_set().len(), 200, "the valid messages around them are written");
    assert_eq!(available(&sub), 0);
}

#[test]
fn stop_finishes_and_acks_the_batches_in_flight() {
    let (sub, _, gate, state) = gated_setup("stop", 400);
    let consumer = start(config(&sub, json!({"threads": 2, "maxMessagesPerPull": 50})), &state);
    wait_until("two batches in the sink", Duration::from_secs(30), &consumer, || {
        state.entered.load(Ordering::SeqCst) >= 2
    });
    let held = stat(&consumer, "messages_outstanding");
    assert!(held > 0);

    let consumer = Arc::new(consumer);
    let stopping = {
        let consumer = consumer.clone();
        std::thread::spawn(move || futures::executor::block_on(consumer.stop()))
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!stopping.is_finished(), "stop waits for the batches in flight");
    gate.add_permits(1000);
    stopping.join().unwrap().unwrap();
    let first = state.durable_set();
    assert_eq!(stat(&consumer, "messages_acked") as usize, first.len(), "every batch written before the stop is acked");
    assert_eq!(stat(&consumer, "messages_outstanding"), 0);
    assert!(first.len() < 400, "the stop came before everything was consumed");

    // A new consumer gets the rest: nothing lost, nothing acked twice.
    let rest = Arc::new(SinkState::default());
    let second = start(config(&sub, json!({"threads": 2})), &rest);
    wait_until("the rest", Duration::from_secs(60), &second, || first.len() + rest.durable_set().len() >= 400);
    futures::executor::block_on(second.stop()).unwrap();
    let all: HashSet<Vec<u8>> = first.keys().chain(rest.durable_set().keys()).cloned().collect();
    assert_eq!(all.len(), 400);
    assert!(first.keys().all(|p| !rest.durable_set().contains_key(p)), "an acked message came back");
}

#[test]
fn configure_creates_the_subscription_and_a_missing_one_is_a_clear_error() {
    ensure_emulator();
    let sub = unique("missing");
    let err = create_consumer(config(&sub, json!({}))).err().expect("a missing subscription fails create");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let topic = unique("auto");
    let state = Arc::new(SinkState::default());
    let consumer = start(config(&sub, json!({"configure": true, "topic": topic})), &state);
    publish(&topic, &payloads("auto", 10));
    wait_until("acked", Duration::from_secs(30), &consumer, || stat(&consumer, "messages_acked") >= 10);
    futures::executor::block_on(consumer.stop()).unwrap();
    assert_eq!(state.durable_set().len(), 10);
}

#[test]
fn batches_held_past_the_ack_deadline_are_extended_not_redelivered() {
    // 10 s is Pub/Sub's shortest deadline; the sink holds the batches 13 s.
    let (sub, _, gate, state) = gated_setup("extend", 100);
    let consumer =
        start(config(&sub, json!({"threads": 3, "maxMessagesPerPull": 50, "ackDeadlineSeconds": 10})), &state);
    wait_until("both batches in the sink", Duration::from_secs(30), &consumer, || {
        state.entered.load(Ordering::SeqCst) >= 2
    });
    std::thread::sleep(Duration::from_secs(13));
    // Without extensions the third loop would have been given them again.
    assert_eq!(state.entered.load(Ordering::SeqCst), 2, "a held batch was redelivered");
    assert!(stat(&consumer, "deadline_extensions") >= 4, "deadlines were not extended");
    gate.add_permits(1000);
    wait_until("every message acked", Duration::from_secs(30), &consumer, || stat(&consumer, "messages_acked") >= 100);
    futures::executor::block_on(consumer.stop()).unwrap();
    assert!(state.durable_set().values().all(|n| *n == 1));
    assert_eq!(stat(&consumer, "messages_received"), 100);
    assert_eq!(available(&sub), 0);
}

/// A payload the test sink refuses for good (valid JSON, so not "invalid").
fn poison(n: usize) -> Vec<u8> {
    format!("{{\"POISON\": {n}}}").into_bytes()
}

fn poisoned_sink() -> Arc<SinkState> {
    Arc::new(SinkState { poison: Some(b"POISON".to_vec()), ..Default::default() })
}

#[test]
fn poison_messages_are_dead_lettered_to_a_topic_and_acked() {
    let (topic, sub) = setup(60);
    let (dead_letters, dead_letter_sub) = setup(60);
    let mut sent = payloads("dlq", 200);
    sent.insert(77, poison(1));
    sent.insert(150, poison(2));
    publish(&topic, &sent);
    let state = poisoned_sink();
    let consumer =
        start(config(&sub, json!({"threads": 2, "maxMessagesPerPull": 50, "deadLetterTopic": dead_letters})), &state);
    wait_until("every message acked", Duration::from_secs(60), &consumer, || stat(&consumer, "messages_acked") >= 202);
    futures::executor::block_on(consumer.stop()).unwrap();

    assert_eq!(stat(&consumer, "messages_dead_lettered"), 2);
    assert_eq!(stat(&consumer, "dead_letter_errors"), 0);
    assert_eq!(stat(&consumer, "messages_acked"), 202, "good and poison messages acked once each");
    assert_eq!(stat(&consumer, "messages_nacked"), 0, "a permanent refusal is not redelivered");
    let durable = state.durable_set();
    assert_eq!(durable.len(), 200);
    assert!(sent.iter().filter(|p| !p.starts_with(b"{\"POISON")).all(|p| durable.contains_key(p)));
    assert!(state.refused_permanently.load(Ordering::SeqCst) >= 2);
    assert_eq!(available(&sub), 0, "nothing left to redeliver");

    let mut letters = drain(&dead_letter_sub);
    letters.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(letters.iter().map(|l| l.0.clone()).collect::<Vec<_>>(), vec![poison(1), poison(2)]);
    let attributes = &letters[0].1;
    assert_eq!(attributes["heroic.error.kind"], "invalid input", "{attributes}");
    assert_eq!(attributes["heroic.source.subscription"], format!("projects/{PROJECT}/subscriptions/{sub}"));
    assert!(attributes["heroic.error"].as_str().unwrap().contains("poison series"), "{attributes}");
    assert!(!attributes["heroic.source.message_id"].as_str().unwrap().is_empty());
}

#[test]
fn without_a_dead_letter_topic_poison_goes_to_the_file_and_a_failing_file_is_retried() {
    let (topic, sub) = setup(60);
    let mut sent = payloads("dlf", 100);
    sent.insert(40, poison(3));
    publish(&topic, &sent);
    // The file's directory cannot be created while a plain file is in its
    // way: the dead letter fails, the poison message is nacked, not acked.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("dl");
    std::fs::write(&blocker, b"in the way").unwrap();
    let file = blocker.join("dead.jsonl");
    let state = poisoned_sink();
    let consumer = start(config(&sub, json!({"threads": 1, "deadLetterFile": file})), &state);
    wait_until("dead-letter errors", Duration::from_secs(60), &consumer, || {
        stat(&consumer, "dead_letter_errors") >= 2 && stat(&consumer, "messages_acked") >= 100
    });
    assert_eq!(stat(&consumer, "messages_dead_lettered"), 0);
    assert!(stat(&consumer, "messages_nacked") >= 2, "the poison message is handed back");
    assert_eq!(state.durable_set().len(), 100, "the good messages around it are written");

    // The destination comes back: the poison message is stored, then acked.
    std::fs::remove_file(&blocker).unwrap();
    wait_until("dead-lettered", Duration::from_secs(60), &consumer, || stat(&consumer, "messages_dead_lettered") == 1);
    wait_until("acked", Duration::from_secs(30), &consumer, || stat(&consumer, "messages_acked") == 101);
    futures::executor::block_on(consumer.stop()).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["kind"], "invalid input");
    assert_eq!(lines[0]["source"]["subscription"], format!("projects/{PROJECT}/subscriptions/{sub}"));
    let engine = base64::engine::general_purpose::STANDARD;
    assert_eq!(base64::Engine::decode(&engine, lines[0]["payload_base64"].as_str().unwrap()).unwrap(), poison(3));
    assert_eq!(available(&sub), 0);
}
