//! Aggregations from Heroic's JSON form.

use serde_json::{Map, Value};

use super::{Aggregation, BucketKind, CardinalityMethod, FilterK};
use crate::duration::{Duration, TimeUnit};
use crate::error::{index_path, join_path, QueryError, Result};
use crate::limits::MAX_AGGREGATION_DEPTH;

/// Every aggregation type name, for error messages.
pub(crate) const NAMES: &str = "empty, group, collapse, chain, opts, sum, sum2, average, min, max, count, stddev, spread, quantile, ratePerSecond, delta, deltaPerSecond, notNegative, topk, bottomk, abovek, belowk, pointsabove, pointsbelow, cardinality, tpl, group-unique, tdigest";

impl Aggregation {
    /// Parses Heroic's aggregation JSON (`{"type":"sum","sampling":{…}}`); a
    /// list is a chain.
    pub fn from_json(value: &Value) -> Result<Aggregation> {
        parse(value, "")
    }
}

/// Parses an aggregation at `path` (a list is a chain).
pub(crate) fn parse(value: &Value, path: &str) -> Result<Aggregation> {
    parse_nested(value, path, 1)
}

/// Parses one aggregation at nesting level `depth` (the root is level 1).
fn parse_nested(value: &Value, path: &str, depth: usize) -> Result<Aggregation> {
    if depth > MAX_AGGREGATION_DEPTH {
        return Err(QueryError::json(
            path,
            format!("aggregation nested more than {MAX_AGGREGATION_DEPTH} levels deep (the nesting limit)"),
        ));
    }
    match value {
        Value::Array(items) => Ok(Aggregation::chain(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_nested(v, &index_path(path, i), depth + 1))
                .collect::<Result<_>>()?,
        )),
        Value::Object(obj) => parse_object(obj, path, depth),
        other => Err(QueryError::json(path, format!("expected an aggregation object, got {other}"))),
    }
}

fn parse_object(obj: &Map<String, Value>, path: &str, depth: usize) -> Result<Aggregation> {
    let ty = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(QueryError::json(&join_path(path, "type"), format!("expected a string, got {other}")))
        }
        None => return Err(QueryError::json(path, "missing aggregation field 'type'")),
    };
    let get = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let p = |name: &str| join_path(path, name);
    let number = |name: &str| -> Result<Option<f64>> {
        get(name)
            .map(|v| v.as_f64().ok_or_else(|| QueryError::json(&p(name), format!("expected a number, got {v}"))))
            .transpose()
    };
    let integer = |name: &str| -> Result<Option<u64>> {
        get(name)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| QueryError::json(&p(name), format!("expected a non-negative integer, got {v}")))
            })
            .transpose()
    };
    let sub = |name: &str| -> Result<Aggregation> {
        get(name).map(|v| parse_nested(v, &p(name), depth + 1)).unwrap_or(Ok(Aggregation::Empty))
    };
    let of = || -> Result<Option<Vec<String>>> {
        get("of")
            .map(|v| {
                let items = v
                    .as_array()
                    .ok_or_else(|| QueryError::json(&p("of"), format!("expected a list of tag names, got {v}")))?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        s.as_str().map(str::to_string).ok_or_else(|| {
                            QueryError::json(&index_path(&p("of"), i), format!("expected a tag name (string), got {s}"))
                        })
                    })
                    .collect()
            })
            .transpose()
    };
    let bucket = |kind: BucketKind| -> Result<Aggregation> {
        let (size, extent) = sampling(obj, path)?;
        Ok(Aggregation::Bucket { kind, size, extent })
    };
    Ok(match ty {
        "empty" => Aggregation::Empty,
        "group" => Aggregation::Group { of: of()?, each: Box::new(sub("each")?) },
        "collapse" => Aggregation::Collapse { of: of()?, each: Box::new(sub("each")?) },
        "chain" => {
            let list = get("chain").ok_or_else(|| QueryError::json(path, "chain: missing field 'chain'"))?;
            if !list.is_array() {
                return Err(QueryError::json(&p("chain"), "expected a list of aggregations"));
            }
            parse_nested(list, &p("chain"), depth + 1)?
        }
        "opts" => {
            let (size, extent) = match get("sampling") {
                Some(Value::Object(s)) => sampling_query(s, &p("sampling"))?,
                Some(other) => {
                    return Err(QueryError::json(&p("sampling"), format!("expected an object, got {other}")))
                }
                None => (None, None),
            };
            Aggregation::Options { size, extent, aggregation: Box::new(sub("aggregation")?) }
        }
        simple if BucketKind::simple(simple).is_some() => bucket(BucketKind::simple(simple).expect("checked"))?,
        "quantile" => {
            let q = number("q")?.unwrap_or(0.5);
            let error = number("error")?.unwrap_or(0.01);
            check_quantile(q, error).map_err(|m| QueryError::json(&p("q"), m))?;
            bucket(BucketKind::Quantile { q, error })?
        }
        "cardinality" => {
            let method = match get("method") {
                Some(Value::Object(m)) => method(m, &p("method"))?,
                Some(other) => return Err(QueryError::json(&p("method"), format!("expected an object, got {other}"))),
                None => CardinalityMethod::default(),
            };
            bucket(BucketKind::Cardinality(method))?
        }
        "tdigest" => {
            let (size, extent) = sampling(obj, path)?;
            Aggregation::Tdigest { size, extent }
        }
        "delta" => Aggregation::Delta,
        "deltaPerSecond" => Aggregation::DeltaPerSecond,
        "notNegative" => Aggregation::NotNegative,
        "topk" | "bottomk" | "abovek" | "belowk" if !empty_of(get("of")) => {
            return Err(QueryError::json(
                &p("of"),
                format!("{ty}: 'of' must be absent, null or {{\"type\":\"empty\"}}"),
            ))
        }
        "topk" | "bottomk" => {
            let k = integer("k")?.ok_or_else(|| QueryError::json(path, format!("{ty}: missing field 'k'")))?;
            Aggregation::Filter(if ty == "topk" { FilterK::TopK(k) } else { FilterK::BottomK(k) })
        }
        "abovek" | "belowk" => {
            let k = number("k")?.ok_or_else(|| QueryError::json(path, format!("{ty}: missing field 'k'")))?;
            Aggregation::Filter(if ty == "abovek" { FilterK::AboveK(k) } else { FilterK::BelowK(k) })
        }
        "pointsabove" | "pointsbelow" => {
            let t = number("threshold")?
                .ok_or_else(|| QueryError::json(path, format!("{ty}: missing field 'threshold'")))?;
            if ty == "pointsabove" {
                Aggregation::PointsAbove(t)
            } else {
                Aggregation::PointsBelow(t)
            }
        }
        other => {
            return Err(QueryError::json(
                &p("type"),
                format!("unknown aggregation \"{other}\" (expected one of {NAMES})"),
            ))
        }
    })
}

/// The `of` of the group filters: Heroic accepts only no aggregation there
/// (the Grafana data source sends `{"type":"empty"}`).
fn empty_of(of: Option<&Value>) -> bool {
    match of {
        None => true,
        Some(Value::Object(o)) => o.len() == 1 && o.get("type").and_then(Value::as_str) == Some("empty"),
        Some(_) => false,
    }
}

pub(crate) fn check_quantile(q: f64, error: f64) -> std::result::Result<(), String> {
    if !(0.0..=1.0).contains(&q) {
        return Err(format!("quantile q must be between 0 and 1, got {q}"));
    }
    if !(error > 0.0 && error < 1.0) {
        return Err(format!("quantile error must be between 0 and 1, got {error}"));
    }
    Ok(())
}

/// `size`/`extent` (durations) or `sampling` on a bucketed aggregation; the
/// explicit fields win over `sampling`.
fn sampling(obj: &Map<String, Value>, path: &str) -> Result<(Option<Duration>, Option<Duration>)> {
    let dur = |name: &str| -> Result<Option<Duration>> {
        obj.get(name).filter(|v| !v.is_null()).map(|v| Duration::from_json(v, &join_path(path, name))).transpose()
    };
    let (size, extent) = (dur("size")?, dur("extent")?);
    let (s_size, s_extent) = match obj.get("sampling").filter(|v| !v.is_null()) {
        Some(Value::Object(s)) => sampling_query(s, &join_path(path, "sampling"))?,
        Some(other) => {
            return Err(QueryError::json(&join_path(path, "sampling"), format!("expected an object, got {other}")))
        }
        None => (None, None),
    };
    Ok((size.or(s_size), extent.or(s_extent)))
}

/// Heroic's SamplingQuery `{unit, value, extent}` (or `size`); `unit`
/// overrides the unit of both value and extent; extent defaults to value.
fn sampling_query(s: &Map<String, Value>, path: &str) -> Result<(Option<Duration>, Option<Duration>)> {
    let unit = match s.get("unit").filter(|v| !v.is_null()) {
        Some(Value::String(u)) => Some(TimeUnit::from_java_name(u).ok_or_else(|| {
            QueryError::json(
                &join_path(path, "unit"),
                format!("unknown time unit \"{u}\" (expected MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS)"),
            )
        })?),
        Some(other) => {
            return Err(QueryError::json(&join_path(path, "unit"), format!("expected a string, got {other}")))
        }
        None => None,
    };
    let dur = |name: &str| -> Result<Option<Duration>> {
        s.get(name)
            .filter(|v| !v.is_null())
            .map(|v| match (v.as_f64(), unit) {
                // A fraction of the unit, as Grafana sends for sub-second
                // intervals (`{"unit":"seconds","value":0.2}` is 200 ms).
                // Heroic truncated the value to 0 and failed the query;
                // converting it exactly is what the client meant.
                (Some(f), Some(u)) if !v.is_i64() && !v.is_u64() && f.is_finite() && f >= 0.0 => {
                    Ok(Duration::millis(fraction_to_millis(f, u)))
                }
                _ => Duration::from_json(v, &join_path(path, name))
                    .map(|d| unit.map_or(d, |u| Duration::new(d.value, u))),
            })
            .transpose()
    };
    let size = match dur("value")? {
        Some(v) => Some(v),
        None => dur("size")?,
    };
    let extent = dur("extent")?.or(size);
    Ok((size, extent))
}

/// `f` units in whole milliseconds, rounded down, except that a product
/// within a rounding error of a whole number is that number (`0.29` s is
/// 290 ms, not the 289.99999999999997 of binary floating point).
fn fraction_to_millis(f: f64, unit: TimeUnit) -> i64 {
    let ms = f * unit.millis() as f64;
    let nearest = ms.round();
    (if (ms - nearest).abs() < 1e-6 { nearest } else { ms.floor() }) as i64
}

fn method(m: &Map<String, Value>, path: &str) -> Result<CardinalityMethod> {
    let include_key = match m.get("includeKey").filter(|v| !v.is_null()) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        Some(other) => {
            return Err(QueryError::json(&join_path(path, "includeKey"), format!("expected a boolean, got {other}")))
        }
        None => false,
    };
    let precision = m.get("precision").filter(|v| !v.is_null());
    Ok(match m.get("type").and_then(Value::as_str) {
        Some("exact") => CardinalityMethod::Exact { include_key },
        Some("hll") => {
            let precision = match precision {
                Some(v) => v.as_f64().filter(|p| *p > 0.0 && *p < 1.0).ok_or_else(|| {
                    QueryError::json(
                        &join_path(path, "precision"),
                        format!("hll precision must be a relative error between 0 and 1, got {v}"),
                    )
                })?,
                None => 0.01,
            };
            CardinalityMethod::Hll { precision, include_key }
        }
        Some("hllp") => {
            let precision = match precision {
                Some(v) => v.as_u64().filter(|p| (4..=18).contains(p)).ok_or_else(|| {
                    QueryError::json(
                        &join_path(path, "precision"),
                        format!("hllp precision must be an integer from 4 to 18, got {v}"),
                    )
                })? as u8,
                None => 16,
            };
            CardinalityMethod::Hllp { precision, include_key }
        }
        Some(other) => {
            return Err(QueryError::json(
                &join_path(path, "type"),
                format!("unknown cardinality method \"{other}\" (expected exact, hll or hllp)"),
            ))
        }
        None => return Err(QueryError::json(path, "cardinality method: missing field 'type'")),
    })
}
