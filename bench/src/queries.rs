//! The benchmark's queries, each asked of both servers in their own
//! language, and the answer each must give, computed from the data set.
//!
//! Answers are compared in one shape, [`Answer`]: per group (a tag value,
//! or "" for one group), the `(timestamp, value)` pairs in time order.
//! Both servers answer exactly (sums of 2-decimal values are compared to
//! 1e-6 relative), so a server that answers fast but wrong fails the run.
//!
//! The PromQL query, `sum(rate(m[5m]))`, is also asked of a real
//! Prometheus fed the same data. Its expected answer follows Prometheus'
//! `rate` (2.42's `extrapolatedRate`), which heroic and Prometheus must
//! both give; VictoriaMetrics' `rate` is computed differently (no
//! extrapolation), so its answer is only reported as a deviation.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::data::{self, Shape, METRIC};

/// Per group, its points in time order.
pub type Answer = BTreeMap<String, Vec<(i64, f64)>>;

/// The queries, in the order they run and are reported.
pub const ALL: [Query; 6] =
    [Query::Raw, Query::Sum, Query::AvgByHost, Query::MaxDbHour, Query::CountPrefix, Query::PromqlRate];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Query {
    /// Every point of one series over the whole range, no aggregation.
    Raw,
    /// The sum of every series in 1-minute buckets over the whole range.
    Sum,
    /// The average of each host's series (100 groups) in 5-minute buckets.
    AvgByHost,
    /// The maximum of the `role = db` series (a tenth) in 1-minute
    /// buckets over the last hour of the range.
    MaxDbHour,
    /// How many series have an `instance` starting `i-0001` (100 of them
    /// once there are 200 series).
    CountPrefix,
    /// PromQL `sum(rate(m[5m]))` over every series, a step a minute, on
    /// Prometheus' query API (the data are gauges, so every decrease
    /// counts as a counter reset: the same work as on a counter).
    PromqlRate,
}

/// One HTTP request: a POST of a JSON body with heroic, a GET with
/// VictoriaMetrics.
pub enum Request {
    Post { path: &'static str, body: Value },
    Get { path: &'static str, params: Vec<(&'static str, String)> },
}

const RAW_INSTANCE: usize = 0;
const PREFIX: &str = "i-0001";
const HOUR: i64 = 3_600_000;
/// The range of `rate`'s window.
const RATE_RANGE: i64 = 300_000;

impl Query {
    pub fn name(self) -> &'static str {
        match self {
            Query::Raw => "raw",
            Query::Sum => "sum",
            Query::AvgByHost => "avg_by_host",
            Query::MaxDbHour => "max_db_hour",
            Query::CountPrefix => "count_prefix",
            Query::PromqlRate => "promql_rate",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Query::Raw => "raw one series, whole range",
            Query::Sum => "sum of all series, 1 m",
            Query::AvgByHost => "average by host, 5 m",
            Query::MaxDbHour => "max of role=db, last hour, 1 m",
            Query::CountPrefix => "series count by tag prefix",
            Query::PromqlRate => "PromQL sum(rate(m[5m])), 1 m step",
        }
    }

    pub fn parse(name: &str) -> Option<Query> {
        ALL.into_iter().find(|q| q.name() == name)
    }

    /// `(from, to]` and the bucket size of the query (0: raw or no buckets).
    fn window(self, shape: Shape) -> (i64, i64, i64) {
        let (start, end) = (shape.start_ms, shape.end_ms());
        match self {
            Query::Raw | Query::CountPrefix => (start, end, 0),
            Query::Sum => (start, end, 60_000),
            Query::AvgByHost => (start, end, 300_000),
            Query::MaxDbHour => ((end - HOUR).max(start), end, 60_000),
            // The first step five minutes in: its window holds 30 points.
            Query::PromqlRate => (start + RATE_RANGE - 60_000, end, 60_000),
        }
    }

    pub fn heroic(self, shape: Shape) -> Request {
        let (from, to, size) = self.window(shape);
        let range = json!({"type": "absolute", "start": from, "end": to});
        let sampling = json!({"unit": "milliseconds", "value": size});
        let key = json!(["key", METRIC]);
        let body = match self {
            Query::Raw => json!({
                "range": range,
                "filter": ["and", key, ["=", "instance", data::instance(RAW_INSTANCE)]],
            }),
            Query::Sum => json!({
                "range": range, "filter": key,
                "aggregation": {"type": "sum", "sampling": sampling},
            }),
            Query::AvgByHost => json!({
                "range": range, "filter": key,
                "aggregation": {"type": "group", "of": ["host"],
                    "each": {"type": "average", "sampling": sampling}},
            }),
            Query::MaxDbHour => json!({
                "range": range, "filter": ["and", key, ["=", "role", "db"]],
                "aggregation": {"type": "max", "sampling": sampling},
            }),
            Query::CountPrefix => {
                let body = json!({"range": range, "filter": ["and", key, ["^", "instance", PREFIX]]});
                return Request::Post { path: "/metadata/series-count", body };
            }
            // The same request as to VictoriaMetrics and Prometheus.
            Query::PromqlRate => return self.vm(shape),
        };
        Request::Post { path: "/query/metrics", body }
    }

    pub fn vm(self, shape: Shape) -> Request {
        let (from, to, size) = self.window(shape);
        let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
        let range = |query: String| {
            let params = vec![
                ("query", query),
                // The first step ends one bucket after the start, as heroic's first bucket.
                ("start", secs(from + size)),
                ("end", secs(to)),
                ("step", format!("{}ms", size)),
                // VictoriaMetrics' rollup cache would answer repeated runs from memory.
                ("nocache", "1".to_string()),
            ];
            Request::Get { path: "/api/v1/query_range", params }
        };
        let w = format!("{}ms", size);
        match self {
            Query::Raw => Request::Get {
                path: "/api/v1/export",
                params: vec![
                    ("match[]", format!(r#"{METRIC}{{instance="{}"}}"#, data::instance(RAW_INSTANCE))),
                    ("start", secs(from + 1)),
                    ("end", secs(to)),
                ],
            },
            Query::Sum => range(format!("sum(sum_over_time({METRIC}[{w}]))")),
            // Every series has the same number of points per bucket, so the
            // average of per-series averages is the average of the points.
            Query::AvgByHost => range(format!("avg by (host) (avg_over_time({METRIC}[{w}]))")),
            Query::MaxDbHour => range(format!(r#"max(max_over_time({METRIC}{{role="db"}}[{w}]))"#)),
            Query::PromqlRate => range(format!("sum(rate({METRIC}[{}ms]))", RATE_RANGE)),
            Query::CountPrefix => Request::Get {
                path: "/api/v1/series",
                params: vec![
                    ("match[]", format!(r#"{{__name__="{METRIC}",instance=~"{PREFIX}.*"}}"#)),
                    ("start", secs(from + 1)),
                    ("end", secs(to)),
                ],
            },
        }
    }

    /// Reads a heroic answer.
    pub fn read_heroic(self, v: &Value) -> Result<Answer> {
        if self == Query::CountPrefix {
            let n = v["count"].as_f64().with_context(|| format!("no count: {v}"))?;
            return Ok(one(vec![(0, n)]));
        }
        let groups = v["result"].as_array().with_context(|| format!("no result: {v}"))?;
        let mut out = Answer::new();
        for g in groups {
            let name = if self == Query::AvgByHost { g["tags"]["host"].as_str().unwrap_or("?") } else { "" };
            let values = g["values"].as_array().context("no values")?;
            let points: Result<Vec<(i64, f64)>> = values
                .iter()
                .map(|p| Ok((p[0].as_i64().context("bad timestamp")?, p[1].as_f64().context("bad value")?)))
                .collect();
            out.entry(name.to_string()).or_default().extend(points?);
        }
        Ok(out)
    }

    /// Reads a VictoriaMetrics answer (JSON; `/api/v1/export` answers
    /// one JSON object per line).
    pub fn read_vm(self, body: &[u8]) -> Result<Answer> {
        match self {
            Query::Raw => {
                let mut points = Vec::new();
                for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: Value = serde_json::from_slice(line)?;
                    let (ts, vs) = (v["timestamps"].as_array(), v["values"].as_array());
                    for (t, x) in ts.context("no timestamps")?.iter().zip(vs.context("no values")?) {
                        points.push((t.as_i64().context("bad timestamp")?, x.as_f64().context("bad value")?));
                    }
                }
                Ok(one(points))
            }
            Query::CountPrefix => {
                let v: Value = serde_json::from_slice(body)?;
                let n = v["data"].as_array().with_context(|| format!("no data: {v}"))?.len();
                Ok(one(vec![(0, n as f64)]))
            }
            _ => {
                let v: Value = serde_json::from_slice(body)?;
                let series = v["data"]["result"].as_array().with_context(|| format!("no result: {v}"))?;
                let mut out = Answer::new();
                for s in series {
                    let name = if self == Query::AvgByHost { s["metric"]["host"].as_str().unwrap_or("?") } else { "" };
                    let points = s["values"].as_array().context("no values")?.iter().map(|p| {
                        let t = (p[0].as_f64().context("bad timestamp")? * 1000.0).round() as i64;
                        Ok((t, p[1].as_str().context("bad value")?.parse::<f64>()?))
                    });
                    out.insert(name.to_string(), points.collect::<Result<_>>()?);
                }
                Ok(out)
            }
        }
    }

    /// The answer computed from the data set.
    pub fn expected(self, shape: Shape) -> Answer {
        let (from, to, size) = self.window(shape);
        let cents = |c: i64| c as f64 / 100.0;
        match self {
            Query::Raw => {
                let mut points = Vec::new();
                data::walk(shape, RAW_INSTANCE, |t, c| points.push((t, cents(c))));
                one(points)
            }
            Query::CountPrefix => {
                let n = (0..shape.series).filter(|i| data::instance(*i).starts_with(PREFIX)).count();
                one(vec![(0, n as f64)])
            }
            Query::PromqlRate => {
                let steps: Vec<i64> = (1..).map(|k| from + size * k).take_while(|t| *t <= to).collect();
                let mut sums = vec![None::<f64>; steps.len()];
                let mut samples = Vec::with_capacity(shape.points);
                for s in 0..shape.series {
                    samples.clear();
                    data::walk(shape, s, |t, c| samples.push((t, cents(c))));
                    for (sum, &t) in sums.iter_mut().zip(&steps) {
                        // Prometheus 2.x: the window is [t - range, t].
                        let first = samples.partition_point(|p| p.0 < t - RATE_RANGE);
                        let last = samples.partition_point(|p| p.0 <= t);
                        if let Some(r) = prometheus_rate(&samples[first..last], t - RATE_RANGE, t) {
                            *sum = Some(sum.unwrap_or(0.0) + r);
                        }
                    }
                }
                one(steps.iter().zip(sums).filter_map(|(&t, v)| Some((t, v?))).collect())
            }
            _ => {
                let n = ((to - from) / size) as usize;
                // Cells hold (sum or max in cents, count).
                let mut cells: BTreeMap<String, Vec<Option<(i64, i64)>>> = BTreeMap::new();
                for s in 0..shape.series {
                    let group = match self {
                        Query::AvgByHost => data::host(s),
                        Query::MaxDbHour if data::role(s) != "db" => continue,
                        _ => String::new(),
                    };
                    let row = cells.entry(group).or_insert_with(|| vec![None; n]);
                    data::walk(shape, s, |t, c| {
                        if t <= from {
                            return;
                        }
                        let k = ((t - from - 1) / size) as usize;
                        if let Some(cell) = row.get_mut(k) {
                            *cell = Some(match (*cell, self) {
                                (None, _) => (c, 1),
                                (Some((m, n)), Query::MaxDbHour) => (m.max(c), n + 1),
                                (Some((s, n)), _) => (s + c, n + 1),
                            });
                        }
                    });
                }
                cells
                    .into_iter()
                    .map(|(group, row)| {
                        let points = row.into_iter().enumerate().filter_map(|(k, cell)| {
                            let (v, count) = cell?;
                            let value = if self == Query::AvgByHost { cents(v) / count as f64 } else { cents(v) };
                            Some((from + size * (k as i64 + 1), value))
                        });
                        (group, points.collect())
                    })
                    .collect()
            }
        }
    }
}

/// Prometheus 2.42's `rate` of the samples of one window `[start, end]`
/// (`extrapolatedRate` in `promql/functions.go`): the increase, counter
/// resets added back, extrapolated towards the window's ends when the
/// first and last samples are near them, per second. `None` below two
/// samples.
fn prometheus_rate(samples: &[(i64, f64)], start: i64, end: i64) -> Option<f64> {
    let (&(t0, v0), &(tn, vn)) = (samples.first()?, samples.last()?);
    if samples.len() < 2 {
        return None;
    }
    let mut increase = vn - v0;
    for pair in samples.windows(2) {
        if pair[1].1 < pair[0].1 {
            increase += pair[0].1;
        }
    }
    let secs = |ms: i64| ms as f64 / 1000.0;
    let mut to_start = secs(t0 - start);
    let to_end = secs(end - tn);
    let sampled = secs(tn - t0);
    let average = sampled / (samples.len() - 1) as f64;
    if increase > 0.0 && v0 >= 0.0 {
        // A counter is never negative: extrapolate no further than its zero.
        to_start = to_start.min(sampled * (v0 / increase));
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { average / 2.0 };
    interval += if to_end < threshold { to_end } else { average / 2.0 };
    Some(increase * (interval / sampled) / secs(RATE_RANGE))
}

/// The largest difference between two answers, relative to the expected
/// value (at least 1), over the points both have; and how many points
/// only one of them has.
pub fn deviation(got: &Answer, want: &Answer) -> (f64, usize) {
    let points = |a: &Answer| -> BTreeMap<(String, i64), f64> {
        a.iter().flat_map(|(g, ps)| ps.iter().map(move |&(t, v)| ((g.clone(), t), v))).collect()
    };
    let (got, want) = (points(got), points(want));
    let mut worst = 0.0f64;
    for (key, wv) in &want {
        if let Some(gv) = got.get(key) {
            worst = worst.max((gv - wv).abs() / wv.abs().max(1.0));
        }
    }
    let shared = want.keys().filter(|k| got.contains_key(*k)).count();
    (worst, got.len() + want.len() - 2 * shared)
}

fn one(points: Vec<(i64, f64)>) -> Answer {
    BTreeMap::from([(String::new(), points)])
}

/// Checks an answer against the expected one.
pub fn check(target: &str, q: Query, got: &Answer, want: &Answer) -> Result<()> {
    let what = format!("{target} {}", q.name());
    let names = |a: &Answer| a.keys().cloned().collect::<Vec<_>>();
    ensure!(got.len() == want.len(), "{what}: {} groups, expected {} ({:?})", got.len(), want.len(), names(got));
    for ((gn, g), (wn, w)) in got.iter().zip(want) {
        ensure!(gn == wn, "{what}: group {gn:?}, expected {wn:?}");
        ensure!(g.len() == w.len(), "{what}: group {gn:?} has {} points, expected {}", g.len(), w.len());
        for ((t, v), (wt, wv)) in g.iter().zip(w) {
            ensure!(t == wt, "{what}: group {gn:?}: timestamp {t}, expected {wt}");
            ensure!((v - wv).abs() <= 1e-6 * wv.abs().max(1.0), "{what}: group {gn:?} at {t}: {v}, expected {wv}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed cases of Prometheus' `rate` (`extrapolatedRate`).
    #[test]
    fn the_oracle_rates_as_prometheus_does() {
        let series =
            |from: i64, n: i64, v: &dyn Fn(i64) -> f64| (0..n).map(|i| ((from + i) * 10_000, v(i))).collect::<Vec<_>>();
        // 0, 1 … 30 over the whole window: 30 in 300 s.
        let full = series(0, 31, &|i| i as f64);
        assert!((prometheus_rate(&full, 0, 300_000).unwrap() - 0.1).abs() < 1e-12);
        // 1 … 29 from 10 s on: extrapolated back to the zero point, 10 s
        // before the first sample: 29 · 300/290 in 300 s.
        let late = series(1, 29, &|i| (i + 1) as f64);
        assert!((prometheus_rate(&late, 0, 300_000).unwrap() - 29.0 / 290.0).abs() < 1e-12);
        // A reset (5 → 1) adds the value before it back: 3 + 5 = 8 over
        // 40 s of samples. The start is 100 s away, but a counter at 2
        // rising 8 in 40 s was at zero 10 s before: extrapolated by 10 s
        // there; the end is too far, so by half an interval (5 s).
        let reset = vec![(100_000, 2.0), (110_000, 5.0), (120_000, 1.0), (130_000, 3.0), (140_000, 5.0)];
        let got = prometheus_rate(&reset, 0, 300_000).unwrap();
        assert!((got - 8.0 * (40.0 + 10.0 + 5.0) / 40.0 / 300.0).abs() < 1e-12, "{got}");
        assert_eq!(prometheus_rate(&full[..1], 0, 300_000), None);
    }
}
