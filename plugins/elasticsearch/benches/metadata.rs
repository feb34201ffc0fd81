//! Metadata benchmark: writes/s and find-series latency over 100,000
//! series, against a running test server.
//!
//!   scripts/servers/elasticsearch.sh start
//!   cargo bench -p heroic-plugin-elasticsearch --bench metadata [-- <host:port> [series]]
//!
//! Default server 127.0.0.1:9200 (osmem-server); pass 127.0.0.1:9202 for
//! noida-db. Each run writes to a fresh index.

use std::time::{Duration, Instant};

use elasticsearch::http::Method;
use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::sdk::{MetadataBackend, Query};
use heroic_plugin_api::types::{Series, TimeRange};
use heroic_plugin_elasticsearch::config::MetadataConfig;
use heroic_plugin_elasticsearch::EsMetadata;
use serde_json::json;

fn series(i: usize) -> Series {
    Series::new(
        format!("metric-{}", i % 100),
        [
            ("host".to_string(), format!("host-{}", i % 10_000)),
            ("role".to_string(), format!("role-{}", i % 10)),
            ("site".to_string(), format!("site-{}", i % 3)),
            ("n".to_string(), i.to_string()),
        ],
        Vec::<(String, String)>::new(),
    )
}

/// A named filter family (`i` varies the value) and the limit to ask for.
type Case = (&'static str, Box<dyn Fn(usize) -> Filter>, u64);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:9200".into());
    let total: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let index = format!("bench-metadata-{}", std::process::id());
        let config: MetadataConfig = serde_json::from_value(json!({
            "seeds": [format!("http://{addr}")],
            "index": {"type": "single", "name": index},
            "configure": true,
            "writes_per_second": 0.0,
            "bulk_size": 1000,
        }))
        .unwrap();
        let backend = match EsMetadata::create(config).await {
            Ok(b) => b,
            Err(e) => panic!("cannot reach {addr} ({e}); start it with scripts/servers/elasticsearch.sh start"),
        };
        let start = Instant::now();
        let batch = 5000;
        for chunk_start in (0..total).step_by(batch) {
            let chunk: Vec<Series> = (chunk_start..(chunk_start + batch).min(total)).map(series).collect();
            backend.write(chunk.into()).await.expect("write");
        }
        let write_time = start.elapsed();
        backend.client().ok("refresh", Method::Post, &format!("{index}/_refresh"), &[], None).await.expect("refresh");
        println!(
            "server {addr}: {total} series written in {:.2?}: {:.0} series/s",
            write_time,
            total as f64 / write_time.as_secs_f64()
        );

        let range = TimeRange::new(0, i64::MAX);
        let cases: Vec<Case> = vec![
            ("$key = metric-N (1,000 series)", Box::new(|i| Filter::key(format!("metric-{}", i % 100))), 0),
            (
                "host = host-N (10 series)",
                Box::new(|i| Filter::match_tag("host", format!("host-{}", (i * 7) % 10_000))),
                0,
            ),
            ("n = N (1 series)", Box::new(move |i| Filter::match_tag("n", ((i * 13) % total).to_string())), 0),
            (
                "role ^ role-1 and site = site-0, limit 100",
                Box::new(|_| {
                    Filter::And(vec![Filter::starts_with("role", "role-1"), Filter::match_tag("site", "site-0")])
                }),
                100,
            ),
            (
                "host ~ host-1[0-9]{3} and role = role-2 (regexp)",
                Box::new(|_| {
                    Filter::And(vec![Filter::regex("host", "host-1[0-9]{3}"), Filter::match_tag("role", "role-2")])
                }),
                0,
            ),
        ];
        for (name, filter, limit) in cases {
            let mut times = Vec::new();
            let mut found = 0;
            for i in 0..20 {
                let q = Query { filter: filter(i), range, limit };
                let t = Instant::now();
                found = backend.find_series(q).await.expect("find").series.len();
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "find_series {name}: {found} found; p50 {:.2?}, p99 {:.2?}",
                percentile(&times, 0.5),
                percentile(&times, 0.99)
            );
        }
        let t = Instant::now();
        let all = backend.count_series(Query { filter: Filter::True, range, limit: 0 }).await.unwrap();
        println!("count_series(true): {} in {:.2?}", all.count, t.elapsed());
        let t = Instant::now();
        let keys = backend.find_keys(Query { filter: Filter::True, range, limit: 0 }).await.unwrap();
        println!("find_keys(true): {} keys in {:.2?}", keys.keys.len(), t.elapsed());
        let _ = backend.client().ok("drop index", Method::Delete, &index, &[], None).await;
    });
}
