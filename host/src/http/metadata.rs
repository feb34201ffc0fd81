//! The metadata endpoints: `/metadata/series` (POST find, PUT write,
//! DELETE), `/metadata/series-count`, `/metadata/keys` and `/metadata/tags`,
//! with Heroic's request bodies and response shapes.
//!
//! Every configured metadata backend is asked. They are replicas of each
//! other (every new series is written to all of them), so answers are
//! merged as sets: series, keys and tag values are unions, counts the
//! largest answer. A backend that fails adds an entry to `errors`; the
//! others still answer.
//!
//! A backend that cannot evaluate regexes gets a relaxed filter and the
//! host finishes the filter on the series it returns (see
//! [`crate::query::find_series`]); keys, tags and counts are then derived
//! from those series. Deleting by a regex on such a backend is refused for
//! that backend (an `errors` entry), since a relaxed filter would delete
//! more than asked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use heroic_plugin_api::filter::SeriesMatcher;
use heroic_plugin_api::types::{MetadataCapabilities, Series, TimeRange};
use heroic_plugin_api::Filter;
use heroic_query::request::QueryRange;
use heroic_query::QueryError;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::http::error::{parse_json, ApiError, ApiResult};
use crate::http::write::SeriesJson;
use crate::node::Node;

/// Metadata endpoints read the last 7 days when no range is given.
pub const DEFAULT_RANGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// Default `limit` of `/metadata/series` and `/metadata/tags` (Heroic's).
pub const DEFAULT_METADATA_LIMIT: u64 = 50;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// An `errors` entry for a backend that failed.
pub(crate) fn backend_error(role: &str, id: &str, error: impl std::fmt::Display) -> Value {
    json!({"type": "query", "error": format!("{role} backend {id:?}: {error}")})
}

/// Re-roots a filter error's JSON path under `field` (`$[1]` → `filter[1]`).
fn under(field: &str, e: QueryError) -> QueryError {
    match e {
        QueryError::Json { path, message } => {
            let rest = path.strip_prefix('$').unwrap_or(&path);
            let path = if rest.is_empty() || rest.starts_with('[') {
                format!("{field}{rest}")
            } else {
                format!("{field}.{rest}")
            };
            QueryError::Json { path, message }
        }
        other => other,
    }
}

/// The common part of every metadata and suggest body: `filter` (JSON
/// array or object form; absent or null: everything), `range` (absolute or
/// relative; absent: the last 7 days) and `limit`, plus Heroic's legacy
/// `matchKey`, `matchTags` and `hasTags`, which are and-ed into the filter.
/// Unknown fields are ignored, as clients send more than they need.
pub(crate) struct MetadataBody {
    pub fields: Map<String, Value>,
    pub filter: Filter,
    pub range: TimeRange,
    pub limit: Option<u64>,
}

impl MetadataBody {
    pub fn parse(body: &[u8]) -> ApiResult<MetadataBody> {
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { parse_json(body)? };
        let Value::Object(fields) = value else {
            return Err(ApiError::json("", format!("invalid request body: expected a JSON object, got {value}")));
        };
        let present = |name: &str| fields.get(name).filter(|v| !v.is_null());
        let mut parts = Vec::new();
        if let Some(f) = present("filter") {
            parts.push(heroic_query::filter::parse_json(f).map_err(|e| under("filter", e))?);
        }
        if let Some(k) = present("matchKey") {
            let k = k.as_str().ok_or_else(|| shape("matchKey", "expected a string"))?;
            parts.push(Filter::key(k));
        }
        if let Some(tags) = present("matchTags") {
            let tags = tags.as_object().ok_or_else(|| shape("matchTags", "expected an object of tag values"))?;
            for (k, v) in tags {
                let v = v.as_str().ok_or_else(|| shape(&format!("matchTags.{k}"), "expected a string"))?;
                parts.push(Filter::match_tag(k, v));
            }
        }
        if let Some(has) = present("hasTags") {
            let has = has.as_array().ok_or_else(|| shape("hasTags", "expected a list of tag keys"))?;
            for (i, k) in has.iter().enumerate() {
                let k = k.as_str().ok_or_else(|| shape(&format!("hasTags[{i}]"), "expected a string"))?;
                parts.push(Filter::has_tag(k));
            }
        }
        let filter = match parts.len() {
            0 => Filter::True,
            1 => parts.pop().expect("one part"),
            _ => heroic_query::filter::optimize(&Filter::And(parts)),
        };
        let now = now_ms();
        let range = match present("range") {
            Some(r) => QueryRange::from_json(r, "range")?.resolve(now),
            None => TimeRange::new(now - DEFAULT_RANGE_MS, now),
        };
        let limit = optional_u64(&fields, "limit")?;
        Ok(MetadataBody { fields, filter, range, limit })
    }

    /// An optional string field (null and absent alike).
    pub fn string(&self, name: &str) -> ApiResult<Option<String>> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(shape(name, &format!("expected a string, got {other}"))),
        }
    }

    pub fn u64(&self, name: &str) -> ApiResult<Option<u64>> {
        optional_u64(&self.fields, name)
    }
}

fn optional_u64(fields: &Map<String, Value>, name: &str) -> ApiResult<Option<u64>> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            v.as_u64().map(Some).ok_or_else(|| shape(name, &format!("expected a non-negative integer, got {v}")))
        }
    }
}

/// A 400 for a body field of the wrong shape, with its path.
pub(crate) fn shape(path: &str, message: &str) -> ApiError {
    ApiError::from(QueryError::Json { path: path.to_string(), message: message.to_string() })
}

/// The `errors` field first, then the answer's own fields, in Heroic's order.
#[derive(Serialize)]
struct Answer<T: Serialize> {
    errors: Vec<Value>,
    #[serde(flatten)]
    fields: T,
}

pub(crate) fn answer<T: Serialize>(errors: Vec<Value>, fields: T) -> warp::reply::Json {
    warp::reply::json(&Answer { errors, fields })
}

/// A series as Heroic serialises it.
#[derive(Serialize)]
struct SeriesOut {
    key: String,
    tags: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
}

impl From<&Series> for SeriesOut {
    fn from(s: &Series) -> Self {
        SeriesOut {
            key: s.key.to_string(),
            tags: s.tags.iter().map(|t| (t.key.to_string(), t.value.to_string())).collect(),
            resource: s.resource.iter().map(|t| (t.key.to_string(), t.value.to_string())).collect(),
        }
    }
}

/// Whether `backend` must get a relaxed filter (and the host finish it).
fn needs_relaxing(filter: &Filter, capable: bool) -> bool {
    filter.contains_regex() && !capable
}

fn matcher(filter: &Filter) -> ApiResult<SeriesMatcher> {
    filter.compile().map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `POST /metadata/series`: `{errors, series, limited}`.
pub async fn find_series(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let body = MetadataBody::parse(body)?;
    let limit = body.limit.unwrap_or(DEFAULT_METADATA_LIMIT);
    let mut errors = Vec::new();
    let (series, limited) = crate::query::find_series(node, &body.filter, body.range, limit, &mut errors).await?;
    let series: Vec<SeriesOut> = series.iter().map(SeriesOut::from).collect();
    #[derive(Serialize)]
    struct Found {
        series: Vec<SeriesOut>,
        limited: bool,
    }
    Ok(answer(errors, Found { series, limited }))
}

/// `PUT /metadata/series`: registers one series with every metadata and
/// suggest backend; `{errors, times}` (nanoseconds per backend write).
pub async fn write_series(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let series: SeriesJson = parse_json(body)?;
    let series = series.into_series();
    let metadata = node.backends.metadata.iter().map(|b| {
        let series = vec![series.clone()];
        async move {
            let start = Instant::now();
            let result = b.client.write(series).await;
            (("metadata", b.id.as_str()), result, start.elapsed().as_nanos() as u64)
        }
    });
    let suggest = node.backends.suggest.iter().map(|b| {
        let series = vec![series.clone()];
        async move {
            let start = Instant::now();
            let result = b.client.write(series).await;
            (("suggest", b.id.as_str()), result, start.elapsed().as_nanos() as u64)
        }
    });
    let (metadata, suggest) =
        futures::future::join(futures::future::join_all(metadata), futures::future::join_all(suggest)).await;
    let mut errors = Vec::new();
    let mut times = Vec::new();
    for ((role, id), result, ns) in metadata.into_iter().chain(suggest) {
        times.push(ns);
        if let Err(e) = result {
            tracing::warn!(role, backend = id, error = %e, "series write failed");
            errors.push(backend_error(role, id, e));
        }
    }
    #[derive(Serialize)]
    struct Written {
        times: Vec<u64>,
    }
    Ok(answer(errors, Written { times }))
}

/// `DELETE /metadata/series`: `{errors, deleted, failed}`. `filter` is
/// required, so that an empty body cannot delete everything.
pub async fn delete_series(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let body = MetadataBody::parse(body)?;
    if body.fields.get("filter").is_none_or(Value::is_null) {
        return Err(shape("filter", "missing field 'filter' (use [\"true\"] to delete every series)"));
    }
    let limit = body.limit.unwrap_or(0);
    let mut errors = Vec::new();
    let (mut deleted, mut failed) = (0u64, 0u64);
    for b in &node.backends.metadata {
        if needs_relaxing(&body.filter, b.client.capabilities().contains(MetadataCapabilities::REGEX)) {
            errors.push(backend_error(
                "metadata",
                &b.id,
                "cannot delete by a regex filter: the backend cannot evaluate regexes (delete by exact tags instead)",
            ));
            continue;
        }
        match b.client.delete_series(&body.filter, body.range, limit).await {
            // The backends hold the same series: the largest answer is the count.
            Ok(r) => {
                deleted = deleted.max(r.deleted);
                failed += r.failed;
            }
            Err(e) => errors.push(backend_error("metadata", &b.id, e)),
        }
    }
    // Even after a failed answer: a backend may have deleted some series
    // before failing, and forgetting too much only costs a rewrite.
    node.writer.series_deleted();
    #[derive(Serialize)]
    struct Deleted {
        deleted: u64,
        failed: u64,
    }
    Ok(answer(errors, Deleted { deleted, failed }))
}

/// Series of one backend that match `filter`, finished by the host (for a
/// backend that cannot evaluate a regex of the filter).
async fn host_finished(
    b: &crate::backends::Named<heroic_plugin_api::client::MetadataBackendClient>,
    filter: &Filter,
    range: TimeRange,
) -> Result<Vec<Series>, heroic_plugin_api::PluginError> {
    let m = filter.compile().map_err(|e| heroic_plugin_api::PluginError::invalid_input(e.to_string()))?;
    let page = b.client.find_series(&filter.without_regex(), range, 0).await?;
    Ok(page.series.into_iter().filter(|s| m.matches(s)).collect())
}

/// `POST /metadata/series-count`: `{errors, count, limited}`.
pub async fn count_series(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let body = MetadataBody::parse(body)?;
    matcher(&body.filter)?;
    let limit = body.limit.unwrap_or(0);
    let mut errors = Vec::new();
    let (mut count, mut limited) = (0u64, false);
    for b in &node.backends.metadata {
        let answer = if needs_relaxing(&body.filter, b.client.capabilities().contains(MetadataCapabilities::REGEX)) {
            host_finished(b, &body.filter, body.range).await.map(|s| {
                let n = s.len() as u64;
                if limit > 0 && n > limit {
                    (limit, true)
                } else {
                    (n, false)
                }
            })
        } else {
            b.client.count_series(&body.filter, body.range, limit).await.map(|c| (c.count, c.limited))
        };
        match answer {
            Ok((n, l)) => {
                count = count.max(n);
                limited |= l;
            }
            Err(e) => errors.push(backend_error("metadata", &b.id, e)),
        }
    }
    #[derive(Serialize)]
    struct Counted {
        count: u64,
        limited: bool,
    }
    Ok(answer(errors, Counted { count, limited }))
}

/// `POST /metadata/keys`: `{errors, keys, size, duplicates}`.
///
/// Unlike Heroic on Elasticsearch (a terms aggregation at the default size
/// of 10), every matching key is returned unless the body gives a `limit`.
/// `duplicates` counts keys that more than one backend returned.
pub async fn find_keys(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let body = MetadataBody::parse(body)?;
    matcher(&body.filter)?;
    let limit = body.limit.unwrap_or(0);
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for b in &node.backends.metadata {
        let answer = if needs_relaxing(&body.filter, b.client.capabilities().contains(MetadataCapabilities::REGEX)) {
            host_finished(b, &body.filter, body.range)
                .await
                .map(|series| series.iter().map(|s| s.key.to_string()).collect::<BTreeSet<String>>())
        } else {
            b.client
                .find_keys(&body.filter, body.range, limit)
                .await
                .map(|p| p.keys.iter().map(|k| k.to_string()).collect())
        };
        match answer {
            Ok(keys) => {
                for k in keys {
                    *seen.entry(k).or_default() += 1;
                }
            }
            Err(e) => errors.push(backend_error("metadata", &b.id, e)),
        }
    }
    let duplicates = seen.values().filter(|&&n| n > 1).count();
    let mut keys: Vec<String> = seen.into_keys().collect();
    if limit > 0 {
        keys.truncate(limit as usize);
    }
    #[derive(Serialize)]
    struct KeysOut {
        keys: Vec<String>,
        size: usize,
        duplicates: usize,
    }
    let size = keys.len();
    Ok(answer(errors, KeysOut { keys, size, duplicates }))
}

/// `POST /metadata/tags`: `{errors, tags: {key: [values]}, size}`, with at
/// most `limit` (default 50) values per key; `size` is the number of keys.
pub async fn find_tags(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let body = MetadataBody::parse(body)?;
    matcher(&body.filter)?;
    let limit = body.limit.unwrap_or(DEFAULT_METADATA_LIMIT);
    let mut errors = Vec::new();
    let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in &node.backends.metadata {
        let answer = if needs_relaxing(&body.filter, b.client.capabilities().contains(MetadataCapabilities::REGEX)) {
            host_finished(b, &body.filter, body.range).await.map(|series| {
                let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for t in series.iter().flat_map(|s| s.tags.iter()) {
                    out.entry(t.key.to_string()).or_default().insert(t.value.to_string());
                }
                out
            })
        } else {
            b.client.find_tags(&body.filter, body.range, limit).await.map(|page| {
                page.tags
                    .iter()
                    .map(|t| (t.key.to_string(), t.values.iter().map(|v| v.to_string()).collect::<BTreeSet<String>>()))
                    .collect()
            })
        };
        match answer {
            Ok(found) => {
                for (k, values) in found {
                    tags.entry(k).or_default().extend(values);
                }
            }
            Err(e) => errors.push(backend_error("metadata", &b.id, e)),
        }
    }
    if limit > 0 {
        for values in tags.values_mut() {
            while values.len() as u64 > limit {
                values.pop_last();
            }
        }
    }
    #[derive(Serialize)]
    struct Tags {
        tags: BTreeMap<String, BTreeSet<String>>,
        size: usize,
    }
    let size = tags.len();
    Ok(answer(errors, Tags { tags, size }))
}
