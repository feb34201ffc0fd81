//! The benchmark data set and its request bodies for both servers.
//!
//! Every series is a random walk of 10 s gauges with 2 decimals (each step
//! moves by -0.50..=0.50), deterministic per series index, so that both
//! servers receive exactly the same points.
//!
//! Tags: `instance` is unique per series (`i-000042`), `host` takes 100
//! values (series `i` is on host `i mod 100`) and `role` ten (`db` for
//! series 0–99, 1,000–1,099 …), so that "average by host" has 100 groups
//! and "role = db" selects a tenth of the series at every size.

use std::fmt::Write as _;

/// Metric name (VictoriaMetrics) and series key (heroic).
pub const METRIC: &str = "bench_gauge";
pub const STEP_MS: i64 = 10_000;

/// The shape of the data set.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub series: usize,
    pub points: usize,
    /// Timestamp of the point before the first one: points are at
    /// `start + STEP_MS·(i+1)`, so they all fall in `(start, start + points·STEP_MS]`,
    /// the range both servers are queried over.
    pub start_ms: i64,
}

impl Shape {
    pub fn end_ms(&self) -> i64 {
        self.start_ms + STEP_MS * self.points as i64
    }

    pub fn total_points(&self) -> u64 {
        (self.series * self.points) as u64
    }
}

/// SplitMix64's output function: a well-mixed hash of `x`, so that step
/// `i` of series `s` is random without any generator state to carry.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Calls `f(timestamp, cents)` for every point of series `index`.
pub fn walk(shape: Shape, index: usize, mut f: impl FnMut(i64, i64)) {
    let seed = (index as u64) << 32;
    let mut cents = 10_000i64;
    for i in 0..shape.points as i64 {
        cents += (mix(seed + i as u64) % 101) as i64 - 50;
        f(shape.start_ms + STEP_MS * (i + 1), cents);
    }
}

/// A value in hundredths written as a client would: `-12.05`.
fn put_cents(out: &mut String, cents: i64) {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:02}", a / 100, a % 100);
}

/// Distinct values of `host`.
pub const HOSTS: usize = 100;
const ROLES: [&str; 10] = ["db", "web", "cache", "queue", "batch", "api", "proxy", "auth", "search", "log"];

pub fn host(index: usize) -> String {
    format!("host-{:03}", index % HOSTS)
}

pub fn role(index: usize) -> &'static str {
    ROLES[(index / 100) % ROLES.len()]
}

pub fn instance(index: usize) -> String {
    format!("i-{index:06}")
}

/// The tags of series `index`, as a JSON object's members.
fn tags_json(index: usize) -> String {
    format!(r#""host":"{}","role":"{}","instance":"{}","dc":"eu""#, host(index), role(index), instance(index))
}

/// Heroic's `/write` body for one series.
pub fn heroic_body(shape: Shape, index: usize) -> Vec<u8> {
    let mut out = String::with_capacity(shape.points * 24 + 128);
    let _ = write!(
        out,
        r#"{{"series":{{"key":"{METRIC}","tags":{{{}}}}},"data":{{"type":"points","data":["#,
        tags_json(index)
    );
    let mut first = true;
    walk(shape, index, |t, c| {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "[{t},");
        put_cents(&mut out, c);
        out.push(']');
    });
    out.push_str("]}}");
    out.into_bytes()
}

/// A Prometheus remote-write 1.0 request (snappy-compressed protobuf) for
/// one series, the same for both servers: labels sorted by name, as
/// Prometheus sends them.
pub fn remote_write_body(shape: Shape, index: usize) -> Vec<u8> {
    use heroic::prometheus::remote_write::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message as _;
    let label = |name: &str, value: String| Label { name: name.to_string(), value };
    let labels = vec![
        label("__name__", METRIC.to_string()),
        label("dc", "eu".to_string()),
        label("host", host(index)),
        label("instance", instance(index)),
        label("role", role(index).to_string()),
    ];
    let mut samples = Vec::with_capacity(shape.points);
    walk(shape, index, |timestamp, cents| samples.push(Sample { value: cents as f64 / 100.0, timestamp }));
    let request = WriteRequest { timeseries: vec![TimeSeries { labels, samples, histograms: Vec::new() }] };
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).expect("snappy compresses any bytes")
}

/// One series as OpenMetrics text lines (for `promtool tsdb
/// create-blocks-from openmetrics`), appended to `out`: timestamps in
/// seconds.
pub fn openmetrics_lines(shape: Shape, index: usize, out: &mut String) {
    let labels =
        format!(r#"{METRIC}{{dc="eu",host="{}",instance="{}",role="{}"}}"#, host(index), instance(index), role(index));
    walk(shape, index, |t, c| {
        out.push_str(&labels);
        out.push(' ');
        put_cents(out, c);
        let _ = writeln!(out, " {}.{:03}", t.div_euclid(1000), t.rem_euclid(1000));
    });
}

/// VictoriaMetrics' `/api/v1/import` JSON line for one series.
pub fn vm_body(shape: Shape, index: usize) -> Vec<u8> {
    let mut values = String::with_capacity(shape.points * 8);
    let mut stamps = String::with_capacity(shape.points * 14);
    walk(shape, index, |t, c| {
        if !stamps.is_empty() {
            stamps.push(',');
            values.push(',');
        }
        let _ = write!(stamps, "{t}");
        put_cents(&mut values, c);
    });
    format!(
        r#"{{"metric":{{"__name__":"{METRIC}",{}}},"values":[{values}],"timestamps":[{stamps}]}}"#,
        tags_json(index)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_hold_the_same_points() {
        let shape = Shape { series: 2, points: 3, start_ms: 0 };
        let h = String::from_utf8(heroic_body(shape, 1)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&vm_body(shape, 1)).unwrap();
        let pairs: serde_json::Value = serde_json::from_str::<serde_json::Value>(&h).unwrap()["data"]["data"].clone();
        for i in 0..3 {
            assert_eq!(pairs[i][0], v["timestamps"][i]);
            assert_eq!(pairs[i][1], v["values"][i]);
        }
        assert_eq!(pairs[0][0], 10_000);
        assert_eq!(v["metric"]["instance"], "i-000001");
        assert_eq!(v["metric"]["host"], "host-001");
        let mut text = String::new();
        openmetrics_lines(shape, 1, &mut text);
        let first = text.lines().next().unwrap();
        let value = v["values"][0].to_string();
        assert_eq!(
            first,
            format!(r#"bench_gauge{{dc="eu",host="host-001",instance="i-000001",role="db"}} {value} 10.000"#)
        );
        assert_eq!(text.lines().count(), 3);
    }
}
