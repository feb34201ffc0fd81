//! The plugin loaded through the ABI as the host loads it, fed to the
//! testkit's recording sink standing in for the host's write path
//! (`heroic_plugin_api::testkit::consumer`): it records every payload it
//! made "durable", can refuse batches (a failing backend) or hold them (a
//! slow one), and reports undecodable payloads as invalid like the host.

use std::sync::Arc;

use heroic_plugin_api::client::ConsumerClient;
use heroic_plugin_api::testkit::consumer;
use heroic_plugin_api::PluginError;

#[allow(unused_imports)]
pub use consumer::{stat, wait_until, RecordingSink as TestSink, SinkState};

pub fn create_consumer(config: serde_json::Value) -> Result<ConsumerClient, PluginError> {
    consumer::create_consumer("pubsub", config)
}

/// Creates and starts a consumer feeding `state`.
pub fn start(config: serde_json::Value, state: &Arc<SinkState>) -> ConsumerClient {
    consumer::start_consumer("pubsub", config, state)
}
