//! Batches the host refuses for good (a backend says a series can never be
//! stored, or panics on it): nacking them would have Pub/Sub redeliver
//! them without end. The batch is bisected ([`Bisect`]): each part the host
//! takes is acknowledged at once; a single message it refuses for good is
//! poison: published to `deadLetterTopic` (its data and attributes, plus
//! attributes naming the subscription, its id and the host's error) or
//! appended to the dead-letter file, then acknowledged. A backend down on
//! the way nacks what is left and pauses, as for any batch refused as
//! transient; a dead-letter destination down nacks only the poison
//! messages (after the rest of the batch went through) and pauses.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::support::{Bisect, DeadLetter};
use heroic_plugin_api::PluginError;

use crate::client::Received;
use crate::dead_letter::DeadLetters;
use crate::worker::{raw, Worker};

/// Attributes added to a dead letter published to a topic.
pub const ATTR_SUBSCRIPTION: &str = "heroic.source.subscription";
pub const ATTR_MESSAGE_ID: &str = "heroic.source.message_id";
pub const ATTR_KIND: &str = "heroic.error.kind";
pub const ATTR_ERROR: &str = "heroic.error";

impl Worker {
    /// Resolves a batch the host refused for good with `error`: every
    /// message is acknowledged once written or dead-lettered, or nacked
    /// after a transient failure.
    pub(crate) async fn isolate(&self, messages: &[Received], error: PluginError) {
        let shared = &self.shared;
        shared.stats.ingest_errors.add(1);
        tracing::warn!(error = %error, subscription = %shared.config.subscription_name(), messages = messages.len(),
            "the host refuses a batch for good; splitting it to find the messages at fault");
        let mut bisect = Bisect::new(messages.len());
        // The whole batch is known to fail: start with its halves.
        let mut known = (!bisect.split()).then_some(error);
        // Poison messages whose dead letter failed: nacked at the end, so
        // that the messages after them still go through meanwhile.
        let mut deferred: Vec<String> = Vec::new();
        let mut dead_letter_failure = None;
        while let Some(range) = bisect.current() {
            let part = &messages[range.clone()];
            let ack_ids: Vec<String> = part.iter().map(|m| m.ack_id.clone()).collect();
            let result = match known.take() {
                Some(e) => Err(e),
                None => {
                    let unresolved: Vec<String> = bisect.unresolved().map(|i| messages[i].ack_id.clone()).collect();
                    self.leased(&unresolved, self.sink.ingest(raw(part))).await
                }
            };
            match result {
                Ok(outcome) => {
                    shared.stats.invalid.add(outcome.invalid);
                    self.ack(ack_ids).await;
                }
                Err(e) if e.is_transient() => {
                    // A backend is down after all: nack what is left, pause.
                    shared.stats.ingest_errors.add(1);
                    let mut left: Vec<String> = bisect.unresolved().map(|i| messages[i].ack_id.clone()).collect();
                    left.append(&mut deferred);
                    self.refused(&e, left).await;
                    return;
                }
                Err(e) => {
                    shared.stats.ingest_errors.add(1);
                    if bisect.split() {
                        continue;
                    }
                    match self.dead_letter(&part[0], &e).await {
                        Ok(()) => self.ack(ack_ids).await,
                        Err(reason) => {
                            deferred.extend(ack_ids);
                            dead_letter_failure = Some(PluginError::unavailable(reason));
                        }
                    }
                }
            }
            bisect.resolved();
        }
        match dead_letter_failure {
            // The dead-letter destination is down: as for a backend down,
            // the poison messages come back after a pause.
            Some(e) => self.refused(&e, deferred).await,
            None => shared.succeeded(),
        }
    }

    /// Stores a poison message as a dead letter; `Err` (a reason) when that
    /// fails: the message is then nacked, not acknowledged.
    async fn dead_letter(&self, message: &Received, error: &PluginError) -> Result<(), String> {
        let shared = &self.shared;
        let subscription = shared.config.subscription_name();
        let stored = match &shared.dead_letters {
            DeadLetters::Topic(topic) => {
                let mut attributes: HashMap<String, String> = message.attributes.clone();
                attributes.insert(ATTR_SUBSCRIPTION.into(), subscription.clone());
                attributes.insert(ATTR_MESSAGE_ID.into(), message.message_id.clone());
                attributes.insert(ATTR_KIND.into(), error.kind.as_str().into());
                // Pub/Sub caps attribute values at 1024 bytes.
                attributes.insert(ATTR_ERROR.into(), truncate(error.message.as_str(), 1024));
                shared.client.publish(topic, message.payload.clone(), attributes).await.map_err(|e| e.to_string())
            }
            DeadLetters::File(file) => {
                let source = BTreeMap::from([
                    ("subscription".to_string(), subscription.clone()),
                    ("message_id".to_string(), message.message_id.clone()),
                ]);
                let letter = DeadLetter::now(source, error, message.payload.clone());
                let file = file.clone();
                // A blocking write and fsync: off the runtime's workers.
                match tokio::task::spawn_blocking(move || file.append(&letter)).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the dead-letter write failed: {e}")),
                }
            }
        };
        let destination = shared.dead_letters.describe();
        match stored {
            Ok(()) => {
                shared.stats.dead_lettered.add(1);
                if self.poison_log_allowed() {
                    tracing::warn!(subscription = %subscription, message_id = %message.message_id,
                        kind = %error.kind, reason = %error.message, destination = %destination,
                        "the host refuses a message for good; dead-lettered it and acknowledging it");
                }
                Ok(())
            }
            Err(e) => {
                shared.stats.dead_letter_errors.add(1);
                tracing::warn!(subscription = %subscription, message_id = %message.message_id, error = %e,
                    destination = %destination, "cannot store a poison message as a dead letter; nacking it");
                Err(format!("cannot store a dead letter in the {destination}: {e}"))
            }
        }
    }

    /// At most one poison line per 5 s: a stream of bad messages must not
    /// flood the log (the counter has them all).
    fn poison_log_allowed(&self) -> bool {
        let mut last = self.shared.poison_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
