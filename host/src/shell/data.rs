//! `write`, `fetch`, `query` and `parse-query`: points in and out.

use clap::Args;
use heroic_plugin_api::types::{FetchRequest, PointBatch, Series, TimeRange};
use serde_json::{json, Map, Value};

use crate::http::write::SeriesJson;
use crate::shell::endpoint::Endpoint;
use crate::shell::options::{parse_time, RangeArgs};
use crate::shell::output::{handler_answer, series_json, Output};
use crate::shell::{now_ms, Shell, ShellError};

/// Parses `--series`, Heroic's series JSON.
pub fn parse_series(text: &str) -> Result<Series, ShellError> {
    serde_json::from_str::<SeriesJson>(text).map(SeriesJson::into_series).map_err(|e| {
        ShellError::usage(format!(
            "invalid --series {text:?}: {e} (expected {{\"key\": \"cpu\", \"tags\": {{\"host\": \"a\"}}}})"
        ))
    })
}

#[derive(Args, Debug)]
pub struct WriteArgs {
    /// The series, as Heroic's JSON: `{"key": "cpu", "tags": {"host": "a"}, "resource": {}}`.
    #[arg(long, short = 's')]
    pub series: String,
    /// A point `TIME=VALUE` (repeatable). TIME takes the forms of --start;
    /// a VALUE alone is written at the current time.
    #[arg(long = "point", short = 'p', allow_hyphen_values = true, value_name = "TIME=VALUE")]
    pub points: Vec<String>,
    /// More points as JSON, `[[timestamp, value], …]`.
    #[arg(long, value_name = "JSON")]
    pub points_json: Option<String>,
}

fn checked_point(timestamp: i64, value: f64, text: &str) -> Result<(i64, f64), ShellError> {
    if value.is_finite() {
        Ok((timestamp, value))
    } else {
        Err(ShellError::usage(format!("invalid point {text:?}: only finite values can be stored")))
    }
}

impl WriteArgs {
    fn points(&self, now: i64) -> Result<PointBatch, ShellError> {
        let mut points = Vec::new();
        for text in &self.points {
            let (time, value) = match text.rsplit_once('=') {
                Some((time, value)) => (parse_time(time, now, "point time")?, value),
                None => (now, text.as_str()),
            };
            let value: f64 =
                value.trim().parse().map_err(|e| ShellError::usage(format!("invalid point {text:?}: {e}")))?;
            points.push(checked_point(time, value, text)?);
        }
        if let Some(text) = &self.points_json {
            let parsed: Vec<(i64, f64)> = serde_json::from_str(text).map_err(|e| {
                ShellError::usage(format!("invalid --points-json: {e} (expected [[timestamp, value], …])"))
            })?;
            for (t, v) in parsed {
                points.push(checked_point(t, v, &format!("[{t}, {v}]"))?);
            }
        }
        if points.is_empty() {
            return Err(ShellError::usage("nothing to write: give points with -p TIME=VALUE or --points-json"));
        }
        let mut batch = PointBatch::from_pairs(&points);
        batch.sort_dedup();
        Ok(batch)
    }
}

/// `write`: through `POST /write`, so the points go to every metric backend
/// and the series to every metadata and suggest backend. Prints the series,
/// the number of points and the endpoint's `times`.
pub async fn write(shell: &Shell, args: &WriteArgs) -> Result<(), ShellError> {
    let series = parse_series(&args.series)?;
    let points = args.points(now_ms())?.to_pairs();
    let body = json!({"series": series_json(&series), "data": {"type": "points", "data": points}});
    let answer = shell.call(Endpoint::Write, body.to_string().as_bytes()).await?;
    let times = answer.value.get("times").cloned().unwrap_or_default();
    shell.out.line(&json!({"series": series_json(&series), "points": points.len(), "times": times}))
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// The series, as Heroic's JSON (see `write`).
    #[arg(long, short = 's')]
    pub series: String,
    /// The points read (default: all of them).
    #[command(flatten)]
    pub range: RangeArgs,
    /// Stop after about this many points (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
    /// Only this metric backend (default: every one).
    #[arg(long)]
    pub backend: Option<String>,
}

/// `fetch`: the raw points of one series, one line per backend and
/// resource variant (Bigtable stores those apart).
pub async fn fetch(shell: &Shell, args: &FetchArgs) -> Result<(), ShellError> {
    let series = parse_series(&args.series)?;
    let range = args.range.resolve(now_ms(), TimeRange::ALL.start)?.unwrap_or(TimeRange::ALL);
    for backend in shell.metric_backends(args.backend.as_deref())? {
        let request = FetchRequest { series: vec![series.clone()].into(), range, point_limit: args.limit };
        let response =
            backend.client.fetch(request).await.map_err(|e| ShellError::backend("metrics", &backend.id, e))?;
        if response.series.is_empty() {
            tracing::info!(backend = %backend.id, "no points in the range");
        }
        for fetched in response.series.iter() {
            let mut variant = series.clone();
            if !fetched.resource.is_empty() {
                variant.resource = fetched.resource.clone();
            }
            let points: Vec<(i64, f64)> = fetched.points.to_pairs();
            shell.out.line(&json!({
                "backend": backend.id,
                "series": series_json(&variant),
                "points": points,
                "limited": response.limited,
            }))?;
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The HQL query, e.g. `average(1m) by host from points(1h) where $key = cpu`.
    pub query: String,
    /// Points read at most (`dataLimit`; default: the config's).
    #[arg(long)]
    pub data_limit: Option<u64>,
    /// Result groups at most (`groupLimit`).
    #[arg(long)]
    pub group_limit: Option<u64>,
    /// Series read at most (`seriesLimit`).
    #[arg(long)]
    pub series_limit: Option<u64>,
    /// Points or buckets an aggregation keeps at most (`aggregationLimit`).
    #[arg(long)]
    pub aggregation_limit: Option<u64>,
    /// Fail when a limit is hit instead of answering in part.
    #[arg(long)]
    pub fail_on_limits: bool,
    /// A feature to turn on (`name`) or off (`-name`), e.g. `-shift_range` (repeatable).
    #[arg(long = "feature", allow_hyphen_values = true)]
    pub features: Vec<String>,
    /// Trace the query down to its fetches (`tracing: DETAILED`); without
    /// it the trace has only its top level (`tracing: false`).
    #[arg(long)]
    pub tracing: bool,
}

impl QueryArgs {
    /// The `POST /query/metrics` body.
    fn body(&self) -> Value {
        let mut options = Map::new();
        let limits = [
            ("dataLimit", self.data_limit),
            ("groupLimit", self.group_limit),
            ("seriesLimit", self.series_limit),
            ("aggregationLimit", self.aggregation_limit),
        ];
        for (name, limit) in limits {
            if let Some(limit) = limit {
                options.insert(name.into(), limit.into());
            }
        }
        if self.fail_on_limits {
            options.insert("failOnLimits".into(), true.into());
        }
        options.insert("tracing".into(), if self.tracing { "DETAILED".into() } else { false.into() });
        json!({"query": self.query, "options": options, "features": self.features})
    }
}

/// `query`: the answer of `POST /query/metrics`, on one line.
pub async fn query(shell: &Shell, args: &QueryArgs) -> Result<(), ShellError> {
    let body = args.body().to_string();
    shell.out.answer(&shell.call(Endpoint::QueryMetrics, body.as_bytes()).await?)
}

#[derive(Args, Debug)]
pub struct ParseQueryArgs {
    /// The HQL query to parse.
    pub query: String,
}

/// `parse-query`: the JSON query of `POST /parser/parse-query`. Needs no backends.
pub async fn parse_query(out: &Output, args: &ParseQueryArgs) -> Result<(), ShellError> {
    out.answer(&handler_answer(crate::http::query::parse_query(args.query.as_bytes())).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_args(points: &[&str], json: Option<&str>) -> WriteArgs {
        WriteArgs {
            series: "{}".into(),
            points: points.iter().map(|s| s.to_string()).collect(),
            points_json: json.map(Into::into),
        }
    }

    #[test]
    fn points_come_from_pairs_and_json_sorted_last_write_wins() {
        let batch = write_args(&["2000=2", "1000=1.5", "42"], Some("[[2000, 3.0]]")).points(5000).unwrap();
        assert_eq!(batch.to_pairs(), vec![(1000, 1.5), (2000, 3.0), (5000, 42.0)]);
    }

    #[test]
    fn bad_points_and_series_are_usage_errors() {
        for (points, json, expected) in [
            (vec!["1000=x"], None, "invalid point \"1000=x\""),
            (vec!["1000=inf"], None, "only finite values"),
            (vec![], Some("[[1, \"a\"]]"), "invalid --points-json"),
            (vec![], None, "nothing to write"),
        ] {
            let e = write_args(&points, json).points(0).unwrap_err();
            assert!(matches!(e, ShellError::Usage(_)) && e.to_string().contains(expected), "{e}");
        }
        let e = parse_series("{\"key\": \"a\", \"tagz\": {}}").unwrap_err().to_string();
        assert!(e.contains("unknown field `tagz`"), "{e}");
    }
}
