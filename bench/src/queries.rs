//! The benchmark's queries, each asked of both servers in their own
//! language, and the answer each must give, computed from the data set.
//!
//! Answers are compared in one shape, [`Answer`]: per group (a tag value,
//! or "" for one group), the `(timestamp, value)` pairs in time order.
//! Both servers answer exactly (sums of 2-decimal values are compared to
//! 1e-6 relative), so a server that answers fast but wrong fails the run.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::data::{self, Shape, METRIC};

/// Per group, its points in time order.
pub type Answer = BTreeMap<String, Vec<(i64, f64)>>;

/// The queries, in the order they run and are reported.
pub const ALL: [Query; 5] = [Query::Raw, Query::Sum, Query::AvgByHost, Query::MaxDbHour, Query::CountPrefix];

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

impl Query {
    pub fn name(self) -> &'static str {
        match self {
            Query::Raw => "raw",
            Query::Sum => "sum",
            Query::AvgByHost => "avg_by_host",
            Query::MaxDbHour => "max_db_hour",
            Query::CountPrefix => "count_prefix",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Query::Raw => "raw one series, whole range",
            Query::Sum => "sum of all series, 1 m",
            Query::AvgByHost => "average by host, 5 m",
            Query::MaxDbHour => "max of role=db, last hour, 1 m",
            Query::CountPrefix => "series count by tag prefix",
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
