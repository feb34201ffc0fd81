//! Fault handling against a scripted fake server (no test server needed):
//! a down cluster gives a clear, retried error; failed bulk items are
//! retried and counted, and reported when they keep failing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use heroic_plugin_api::error::ErrorKind;
use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::sdk::{MetadataBackend, Query};
use heroic_plugin_api::types::{Series, TimeRange};
use heroic_plugin_elasticsearch::config::MetadataConfig;
use heroic_plugin_elasticsearch::EsMetadata;
use serde_json::{json, Value};

type Handler = dyn Fn(&str, &str, &str) -> (u16, Value) + Send + Sync;
/// Like [`Handler`], answering extra headers too.
type HeaderHandler = dyn Fn(&str, &str, &str) -> (u16, Vec<(&'static str, String)>, Value) + Send + Sync;

/// Serves HTTP/1.1 on a free port with `handler(method, path, body)`.
fn fake_server(handler: Arc<Handler>) -> String {
    fake_server_with_headers(Arc::new(move |m: &str, p: &str, b: &str| {
        let (status, value) = handler(m, p, b);
        (status, Vec::new(), value)
    }))
}

/// [`fake_server`] whose handler also gives headers.
fn fake_server_with_headers(handler: Arc<HeaderHandler>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || serve(stream, &*h));
        }
    });
    addr
}

fn serve(stream: TcpStream, handler: &HeaderHandler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut len = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let (status, headers, value) = handler(&method, &path, &String::from_utf8_lossy(&body));
        let text = value.to_string();
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
            text.len()
        );
        if out.write_all(head.as_bytes()).and_then(|_| out.write_all(text.as_bytes())).is_err() {
            return;
        }
    }
}

fn config(addr: &str) -> MetadataConfig {
    serde_json::from_value(json!({"seeds": [format!("http://{addr}")], "max_retries": 2, "retry_backoff_ms": 10, "request_timeout_ms": 2000}))
        .unwrap()
}

fn stat(b: &EsMetadata, name: &str) -> f64 {
    b.statistics().iter().find(|s| s.name.as_str() == name).map(|s| s.value).unwrap()
}

#[tokio::test]
async fn down_cluster_is_a_clear_unavailable_error_after_retries() {
    // A port nothing listens on.
    let port = heroic_plugin_api::testkit::free_port();
    let err = match EsMetadata::create(config(&format!("127.0.0.1:{port}"))).await {
        Ok(_) => panic!("created a backend against a closed port"),
        Err(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::UNAVAILABLE, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("3 attempt(s)") && msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
}

#[tokio::test]
async fn failed_bulk_items_are_retried_and_counted() {
    let bulks = Arc::new(AtomicUsize::new(0));
    let b2 = bulks.clone();
    let addr = fake_server(Arc::new(move |_m: &str, path: &str, body: &str| {
        if path.starts_with("/_bulk") {
            let n = b2.fetch_add(1, Ordering::SeqCst);
            let docs = body.lines().count() / 2;
            // First attempt: the first item is rejected (queue full), the
            // rest are created or already exist.
            let items: Vec<Value> = (0..docs)
                .map(|i| match (n, i) {
                    (0, 0) => json!({"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}),
                    (0, 1) => json!({"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}}),
                    _ => json!({"create": {"status": 201}}),
                })
                .collect();
            return (200, json!({"errors": n == 0, "items": items}));
        }
        (200, json!({"version": {"number": "8"}}))
    }));
    let b = EsMetadata::create(config(&addr)).await.unwrap();
    let series: Vec<Series> =
        (0..3).map(|i| Series::new(format!("k{i}"), [("h", "x")], Vec::<(&str, &str)>::new())).collect();
    b.write(series.into()).await.unwrap();
    assert_eq!(bulks.load(Ordering::SeqCst), 2, "one retry bulk for the rejected item");
    assert_eq!(stat(&b, "bulk-item-failures"), 1.0);
    assert_eq!(stat(&b, "bulk-item-retries"), 1.0);
    assert_eq!(stat(&b, "duplicates"), 1.0);
    assert_eq!(stat(&b, "created"), 2.0);
}

#[tokio::test]
async fn items_failing_every_retry_fail_the_write() {
    let addr = fake_server(Arc::new(|_m: &str, path: &str, body: &str| {
        if path.starts_with("/_bulk") {
            let items: Vec<Value> = (0..body.lines().count() / 2)
                .map(|_| json!({"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad doc"}}}))
                .collect();
            return (200, json!({"errors": true, "items": items}));
        }
        (200, json!({}))
    }));
    let b = EsMetadata::create(config(&addr)).await.unwrap();
    let err = b.write(vec![Series::key_only("k")].into()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("1 of 1 document(s) failed") && msg.contains("mapper_parsing_exception: bad doc"), "{msg}");
    assert_eq!(stat(&b, "bulk-items-failed"), 1.0);
    assert_eq!(stat(&b, "bulk-item-retries"), 2.0);
}

#[tokio::test]
async fn overloaded_searches_are_retried_then_reported() {
    let searches = Arc::new(AtomicUsize::new(0));
    let s2 = searches.clone();
    let addr = fake_server(Arc::new(move |_m: &str, path: &str, _b: &str| {
        if path.contains("_search") {
            s2.fetch_add(1, Ordering::SeqCst);
            return (503, json!({"error": {"type": "unavailable_shards_exception", "reason": "no shard"}}));
        }
        (200, json!({}))
    }));
    let b = EsMetadata::create(config(&addr)).await.unwrap();
    let q = Query { filter: Filter::True, range: TimeRange::new(0, 1), limit: 0 };
    let err = b.find_series(q).await.unwrap_err();
    assert_eq!(searches.load(Ordering::SeqCst), 3, "first try and two retries");
    assert!(err.to_string().contains("http 503") && err.to_string().contains("no shard"), "{err}");
    assert_eq!(err.kind, ErrorKind::UNAVAILABLE, "still down after the retries: worth trying again later");
    assert!(!b.health().ok, "a failing cluster makes the backend unhealthy");
}

/// A search answered 503 with `Retry-After: seconds` on its first attempt
/// and with no hits afterwards; answers the time the search took and how
/// many attempts it made.
async fn search_after_retry_after(seconds: u64) -> (std::time::Duration, usize, Result<(), String>) {
    let searches = Arc::new(AtomicUsize::new(0));
    let s2 = searches.clone();
    let addr = fake_server_with_headers(Arc::new(move |_m: &str, path: &str, _b: &str| {
        if path.contains("_search") && s2.fetch_add(1, Ordering::SeqCst) == 0 {
            let busy = json!({"error": {"type": "unavailable_shards_exception", "reason": "busy"}});
            return (503, vec![("retry-after", seconds.to_string())], busy);
        }
        (200, Vec::new(), json!({"hits": {"total": {"value": 0}, "hits": []}}))
    }));
    let b = EsMetadata::create(config(&addr)).await.unwrap();
    let q = Query { filter: Filter::True, range: TimeRange::new(0, 1), limit: 0 };
    let started = std::time::Instant::now();
    let result = b.find_series(q).await.map(drop).map_err(|e| e.to_string());
    (started.elapsed(), searches.load(Ordering::SeqCst), result)
}

#[tokio::test]
async fn a_retry_after_is_waited_for() {
    let (took, attempts, result) = search_after_retry_after(1).await;
    assert_eq!(result, Ok(()));
    assert_eq!(attempts, 2);
    assert!(took >= std::time::Duration::from_secs(1), "retried after {took:?}, not after Retry-After: 1");
}

#[tokio::test]
async fn a_retry_after_longer_than_a_request_is_answered_at_once() {
    // The config's request timeout is 2 s: waiting 60 s would hang the caller.
    let (took, attempts, result) = search_after_retry_after(60).await;
    assert_eq!(attempts, 1, "no retry sooner than asked");
    assert!(result.is_err_and(|e| e.contains("http 503")));
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
}
