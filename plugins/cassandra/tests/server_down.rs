//! The plugin loaded through the real ABI (the cdylib cargo builds for
//! this test) with no Cassandra to talk to: `create` must fail with a clear
//! error within a bounded time, never hang. No CQL is spoken here; there is
//! no Cassandra or ScyllaDB server on the machines this runs on.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use heroic_plugin_api::testkit::{free_port, load_library};
use heroic_plugin_api::{ErrorKind, PluginError};

/// Creates a metric backend through the ABI, as the host does, and returns
/// its error and how long it took; panics if it takes over `limit`.
fn create_error(config: serde_json::Value, limit: Duration) -> (PluginError, Duration) {
    let lib = load_library("cassandra");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = Instant::now();
    let result = runtime.block_on(async {
        let future = (lib.module.create_metric_backend())(config.to_string().into());
        tokio::time::timeout(limit, future).await
    });
    let elapsed = started.elapsed();
    let result = result.unwrap_or_else(|_| panic!("create did not answer within {limit:?}: it hangs"));
    match result.into_result() {
        Ok(_) => panic!("create succeeded without a server: {config}"),
        Err(e) => {
            eprintln!("create failed as expected after {elapsed:?}: {e}");
            (e, elapsed)
        }
    }
}

#[test]
fn a_closed_port_fails_create_with_unavailable() {
    // free_port binds and releases the port: nothing listens there now.
    let seed = format!("127.0.0.1:{}", free_port());
    let config = serde_json::json!({ "seeds": [seed], "connectTimeoutMs": 1000 });
    let (e, elapsed) = create_error(config, Duration::from_secs(30));
    assert_eq!(e.kind, ErrorKind::UNAVAILABLE, "{e}");
    assert!(e.message.contains(&format!("cannot connect to cassandra at {seed}")), "{e}");
    assert!(elapsed < Duration::from_secs(10), "a refused connection took {elapsed:?} to report");
}

#[test]
fn a_server_that_never_answers_fails_create_in_bounded_time() {
    // Accepts connections and says nothing: the CQL handshake never ends.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let seed = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            held.push(stream); // keep them open, silent
        }
    });
    let config = serde_json::json!({ "seeds": [seed], "connectTimeoutMs": 500 });
    // connectTimeoutMs × 3 + 5 s is the plugin's own bound on `create`.
    let (e, elapsed) = create_error(config, Duration::from_secs(30));
    assert!(matches!(e.kind, ErrorKind::UNAVAILABLE | ErrorKind::TIMEOUT), "{e}");
    assert!(e.message.contains("cannot connect to cassandra"), "{e}");
    assert!(elapsed < Duration::from_secs(15), "create took {elapsed:?}");
}

#[test]
fn config_errors_are_reported_through_the_abi_before_connecting() {
    let bounded = Duration::from_secs(10);
    let (e, _) = create_error(serde_json::json!({ "seeds": ["127.0.0.1"], "fetchsize": 10 }), bounded);
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("unknown field `fetchsize`"), "{e}");
    let (e, _) = create_error(serde_json::json!({ "keyspace": "bad-name" }), bounded);
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("keyspace \"bad-name\""), "{e}");
    let (e, _) = create_error(serde_json::json!({ "consistencyLevel": "MOST" }), bounded);
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("unknown variant `MOST`"), "{e}");
}
