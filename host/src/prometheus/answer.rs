//! Prometheus' JSON answers: `{"status":"success","data":…}` and
//! `{"status":"error","errorType":…,"error":…}`, with values as Prometheus
//! writes them (strings: `"1.5"`, `"NaN"`, `"+Inf"`; times as seconds).
//!
//! Written straight into a string: a range query's matrix can hold
//! millions of samples, and a `serde_json::Value` of them would take ten
//! times their size.

use std::fmt::Write;

use heroic_promql::{Labels, RangeSeries, Sample, Value};
use warp::http::{header, StatusCode};
use warp::reply::Response;

use crate::http::error::ApiError;

/// A value as Prometheus writes it (`jsonutil.MarshalValue`): Go's
/// shortest decimal (`'f'`), or with an exponent (`'e'`: `1e+21`,
/// `1.5e-07`) below 1e-6 and from 1e21 on.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "\"+Inf\"" } else { "\"-Inf\"" });
    } else if v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e21) {
        // Rust writes `1.5e-7`; Go a sign and at least two digits.
        let text = format!("{v:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let (sign, digits) = exponent.strip_prefix('-').map_or(("+", exponent), |d| ("-", d));
        let _ = write!(out, "\"{mantissa}e{sign}{digits:0>2}\"");
    } else {
        let _ = write!(out, "\"{v}\"");
    }
}

/// A time in milliseconds as seconds with up to three decimals.
fn write_time(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let t = t.unsigned_abs();
    let (s, ms) = (t / 1000, t % 1000);
    let _ = write!(out, "{s}");
    if ms > 0 {
        let frac = format!("{ms:03}");
        let _ = write!(out, ".{}", frac.trim_end_matches('0'));
    }
}

fn write_sample(out: &mut String, s: Sample) {
    out.push('[');
    write_time(out, s.t);
    out.push(',');
    write_value(out, s.v);
    out.push(']');
}

fn write_str(out: &mut String, s: &str) {
    // serde_json escapes as JSON requires; a String cannot fail to encode.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, name);
        out.push(':');
        write_str(out, value);
    }
    out.push('}');
}

fn success(data: &str) -> Response {
    let mut out = String::with_capacity(data.len() + 32);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    out.push('}');
    json(StatusCode::OK, out)
}

fn json(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}

/// A query's answer.
pub fn value(v: &Value) -> Response {
    let mut out = String::new();
    match v {
        Value::Scalar(s) => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            write_sample(&mut out, *s);
        }
        Value::String { t, value } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            write_time(&mut out, *t);
            out.push(',');
            write_str(&mut out, value);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, (labels, s)) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, labels);
                out.push_str(",\"value\":");
                write_sample(&mut out, *s);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, RangeSeries { labels, samples }) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, labels);
                out.push_str(",\"values\":[");
                for (j, s) in samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_sample(&mut out, *s);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    success(&out)
}

/// A JSON array of `items`, each written by `write`.
fn list<T>(items: impl Iterator<Item = T>, mut write: impl FnMut(&mut String, T)) -> Response {
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(&mut out, item);
    }
    out.push(']');
    success(&out)
}

/// `/api/v1/series`: label sets.
pub fn label_sets<'a>(sets: impl Iterator<Item = &'a Labels>) -> Response {
    list(sets, write_labels)
}

/// `/api/v1/labels` and `/api/v1/label/<name>/values`: strings.
pub fn strings<'a>(names: impl Iterator<Item = &'a str>) -> Response {
    list(names, write_str)
}

/// Any other answer's data, as JSON.
pub fn data(data: &serde_json::Value) -> Response {
    success(&data.to_string())
}

/// An error, typed as Prometheus types it by its status.
pub fn error(e: ApiError) -> Response {
    let kind = match e.status.as_u16() {
        400 => "bad_data",
        404 => "not_found",
        422 => "execution",
        // The query API's own timeout (`query.timeout_secs`).
        503 if e.message.contains("query.timeout_secs") => "timeout",
        503 => "unavailable",
        _ => "internal",
    };
    let body = serde_json::json!({"status": "error", "errorType": kind, "error": e.message});
    let mut r = json(e.status, body.to_string());
    for (name, value) in e.headers {
        r.headers_mut().insert(name, value);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f64) -> String {
        let mut out = String::new();
        write_value(&mut out, v);
        out
    }

    fn time(t: i64) -> String {
        let mut out = String::new();
        write_time(&mut out, t);
        out
    }

    #[test]
    fn values_and_times_are_written_as_prometheus_writes_them() {
        assert_eq!(text(1.5), "\"1.5\"");
        assert_eq!(text(2.0), "\"2\"");
        assert_eq!(text(1e21), "\"1e+21\"");
        assert_eq!(text(1e20), "\"100000000000000000000\"");
        assert_eq!(text(1.5e-7), "\"1.5e-07\"");
        assert_eq!(text(-2.5e300), "\"-2.5e+300\"");
        assert_eq!(text(1e-6), "\"0.000001\"");
        assert_eq!(text(0.0), "\"0\"");
        assert_eq!(text(f64::NAN), "\"NaN\"");
        assert_eq!(text(f64::INFINITY), "\"+Inf\"");
        assert_eq!(text(f64::NEG_INFINITY), "\"-Inf\"");
        assert_eq!(time(1_435_781_451_781), "1435781451.781");
        assert_eq!(time(1_435_781_451_780), "1435781451.78");
        assert_eq!(time(1_435_781_451_000), "1435781451");
        assert_eq!(time(-1), "-0.001");
    }
}
