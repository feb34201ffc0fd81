//! The parameters of Prometheus' query API: from the query string and, for
//! a POST, from a form-encoded body (both are read, the body's first, as
//! Prometheus' `r.FormValue` does); times and durations as Prometheus
//! reads them.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::error::ApiError;

/// Most values of one parameter (`match[]`) read.
const MAX_VALUES: usize = 1_000;

/// A request's parameters, each name with its values in order.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The parameters of `query` (the raw query string) and of `form` (a
    /// form-encoded body, if any).
    pub fn parse(query: &str, form: Option<&[u8]>) -> Params {
        let from_form = form.into_iter().flat_map(form_urlencoded::parse);
        let from_query = form_urlencoded::parse(query.as_bytes());
        Params(from_form.chain(from_query).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (at most [`MAX_VALUES`]).
    pub fn all(&self, name: &str) -> Result<Vec<&str>, ApiError> {
        let values: Vec<&str> = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
        if values.len() > MAX_VALUES {
            return Err(ApiError::bad_request(format!("more than {MAX_VALUES} values of {name}")));
        }
        Ok(values)
    }

    /// A time parameter in milliseconds, `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(text) => parse_time(text).ok_or_else(|| {
                ApiError::bad_request(format!("invalid parameter {name:?}: cannot parse {text:?} to a valid timestamp"))
            }),
        }
    }

    /// A required time parameter in milliseconds.
    pub fn required_time(&self, name: &str) -> Result<i64, ApiError> {
        let text = self.get(name).unwrap_or_default();
        parse_time(text).ok_or_else(|| {
            ApiError::bad_request(format!("invalid parameter {name:?}: cannot parse {text:?} to a valid timestamp"))
        })
    }
}

/// The time now, in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Times the API reads: far enough from the ends of i64 milliseconds that
/// every offset and window stays representable (Prometheus' own minimum
/// and maximum are within these).
const MIN_MS: i64 = -(1 << 53);
const MAX_MS: i64 = 1 << 53;

/// Seconds since the epoch (a decimal, rounded to milliseconds) or an
/// RFC 3339 time.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = (seconds * 1000.0).round();
        return (ms.is_finite() && (MIN_MS as f64..=MAX_MS as f64).contains(&ms)).then_some(ms as i64);
    }
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(t.timestamp_millis().clamp(MIN_MS, MAX_MS))
}

/// A duration in milliseconds: seconds as a decimal, or a Prometheus
/// duration (`15s`, `1m30s`).
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = (seconds * 1000.0).round();
        return (ms.is_finite() && ms.abs() <= MAX_MS as f64).then_some(ms as i64);
    }
    let d = promql_parser::util::parse_duration(text).ok()?;
    i64::try_from(d.as_millis()).ok().filter(|ms| *ms <= MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_as_prometheus_reads_them() {
        assert_eq!(parse_time("1435781451.781"), Some(1_435_781_451_781));
        assert_eq!(parse_time("1435781451"), Some(1_435_781_451_000));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Some(1_435_781_451_781));
        assert_eq!(parse_time("nope"), None);
        assert_eq!(parse_time("1e300"), None);
        assert_eq!(parse_time("NaN"), None);
        assert_eq!(parse_duration_ms("15"), Some(15_000));
        assert_eq!(parse_duration_ms("0.5"), Some(500));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("5x"), None);
    }

    #[test]
    fn parameters_come_from_the_body_and_the_query_string() {
        let p = Params::parse("query=up&match%5B%5D=a", Some(b"match[]=b&time=10"));
        assert_eq!(p.get("query"), Some("up"));
        assert_eq!(p.all("match[]").unwrap(), ["b", "a"]);
        assert_eq!(p.time("time", 0).unwrap(), 10_000);
        assert_eq!(p.time("start", 7).unwrap(), 7);
        assert!(p.required_time("end").is_err());
        assert!(Params::parse("start=", None).required_time("start").is_err(), "empty is not the epoch");
    }
}
