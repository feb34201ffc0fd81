//! OTLP names as Prometheus writes them (`otlptranslator` in Prometheus'
//! `storage/remote/otlptranslator/prometheus`, with metric suffixes on, as
//! its OTLP receiver runs it):
//!
//! - a metric name is split into words at every character that is neither a
//!   letter nor a digit, the unit appended as words (`ms` → `milliseconds`,
//!   `By/s` → `bytes_per_second`; units in braces are annotations and left
//!   out), `total` moved to the end of a monotonic sum and `ratio` to the end
//!   of a gauge of unit `1`, and the words joined with `_`;
//! - an attribute key has every character that is neither a letter nor a
//!   digit replaced by `_`, and `key_` put before a leading digit (`key` before
//!   a single leading `_`);
//! - an attribute value is written as pdata's `AsString` writes it.

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

/// What kind of metric a name is built for: it decides the suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// A sum with `is_monotonic`: a Prometheus counter, named `…_total`.
    Counter,
    /// Anything else (non-monotonic sums, histograms, summaries): no suffix
    /// of its own.
    Other,
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// A unit's words joined with `_` (`cleanUpString`).
fn clean(s: &str) -> String {
    words(s).collect::<Vec<_>>().join("_")
}

/// The Prometheus name of an OTLP metric (`normalizeName`); empty when
/// the name has no letter or digit at all.
pub fn metric_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut tokens: Vec<String> = words(name).map(str::to_owned).collect();
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit.trim(), None),
    };
    let annotation = |u: &str| u.contains(['{', '}']);
    let mut main_prom = String::new();
    if !main.is_empty() && !annotation(main) {
        main_prom = clean(main_unit(main));
        if tokens.contains(&main_prom) {
            main_prom.clear();
        }
    }
    let mut per_prom = String::new();
    if let Some(per) = per.filter(|p| !p.is_empty() && !annotation(p)) {
        let cleaned = clean(per_unit(per));
        if !cleaned.is_empty() {
            per_prom = format!("per_{cleaned}");
            if tokens.contains(&per_prom) {
                per_prom.clear();
            }
        }
    }
    if !per_prom.is_empty() {
        main_prom = main_prom.trim_end_matches('_').to_owned();
    }
    if !main_prom.is_empty() {
        tokens.push(main_prom);
    }
    if !per_prom.is_empty() {
        tokens.push(per_prom);
    }
    let mut suffix = |word: &str| {
        tokens.retain(|t| t != word);
        tokens.push(word.to_owned());
    };
    match kind {
        Kind::Counter => suffix("total"),
        Kind::Gauge if unit == "1" => suffix("ratio"),
        _ => {}
    }
    let name = tokens.join("_");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// The Prometheus label name of an attribute key (`NormalizeLabel`).
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let label: String = key.chars().map(|c| if c.is_alphanumeric() { c } else { '_' }).collect();
    if label.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{label}")
    } else if label.starts_with('_') && !label.starts_with("__") {
        format!("key{label}")
    } else {
        label
    }
}

/// A float as pdata writes it (as JavaScript does): the shortest decimal,
/// with an exponent below 1e-6 and from 1e21 on.
fn float_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e21) {
        let text = format!("{v:e}");
        match text.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => text,
        }
    } else {
        format!("{v}")
    }
}

/// A bucket bound or quantile as a label value (Go's `FormatFloat(v, 'f',
/// -1, 64)`: never an exponent).
pub fn bound_string(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// An attribute value as a label value (pdata's `AsString`): arrays and
/// maps as JSON, bytes as base64.
pub fn value_string(value: Option<&AnyValue>) -> String {
    use any_value::Value as V;
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => float_string(*d),
        Some(V::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(v @ (V::ArrayValue(_) | V::KvlistValue(_))) => json_of(v).to_string(),
        // An index into a profile's string table: no table here.
        Some(V::StringValueStrindex(_)) => String::new(),
    }
}

fn json_of(value: &any_value::Value) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    let inner = |v: &AnyValue| v.value.as_ref().map_or(J::Null, json_of);
    match value {
        V::StringValue(s) => J::String(s.clone()),
        V::BoolValue(b) => J::Bool(*b),
        V::IntValue(i) => J::from(*i),
        V::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or_else(|| J::String(float_string(*d)), J::Number),
        V::BytesValue(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        V::ArrayValue(a) => J::Array(a.values.iter().map(inner).collect()),
        V::KvlistValue(kv) => {
            J::Object(kv.values.iter().map(|p| (p.key.clone(), p.value.as_ref().map_or(J::Null, inner))).collect())
        }
        V::StringValueStrindex(_) => J::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from Prometheus' own tests of `normalizeName` and
    /// `NormalizeLabel`.
    #[test]
    fn names_are_built_as_prometheus_builds_them() {
        let cases = [
            ("system.filesystem.usage", "By", Kind::Gauge, "system_filesystem_usage_bytes"),
            ("system.network.io", "By", Kind::Counter, "system_network_io_bytes_total"),
            ("http.server.duration", "ms", Kind::Other, "http_server_duration_milliseconds"),
            ("speed", "m/s", Kind::Gauge, "speed_meters_per_second"),
            ("throughput", "By/s", Kind::Gauge, "throughput_bytes_per_second"),
            ("requests", "{request}", Kind::Counter, "requests_total"),
            ("requests.total", "", Kind::Counter, "requests_total"),
            ("total.requests", "", Kind::Counter, "requests_total"),
            ("cpu.utilization", "1", Kind::Gauge, "cpu_utilization_ratio"),
            ("cpu.utilization", "1", Kind::Counter, "cpu_utilization_total"),
            ("latency_seconds", "s", Kind::Gauge, "latency_seconds"),
            ("temperature", "Cel", Kind::Gauge, "temperature_celsius"),
            ("queue", "{items}/s", Kind::Gauge, "queue_per_second"),
            ("foo", "frobs/{x}", Kind::Gauge, "foo_frobs"),
            ("2xx.responses", "", Kind::Counter, "_2xx_responses_total"),
            ("métrique.€", "", Kind::Gauge, "métrique"),
            ("...", "", Kind::Gauge, ""),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(metric_name(name, unit, kind), want, "{name} {unit} {kind:?}");
        }
    }

    #[test]
    fn labels_are_sanitized() {
        assert_eq!(label_name("service.version"), "service_version");
        assert_eq!(label_name("http-method"), "http_method");
        assert_eq!(label_name("0day"), "key_0day");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved__"), "__reserved__");
        assert_eq!(label_name("ok"), "ok");
    }

    #[test]
    fn values_are_written_as_pdata_writes_them() {
        use any_value::Value as V;
        let s = |v: V| value_string(Some(&AnyValue { value: Some(v) }));
        assert_eq!(s(V::StringValue("a".into())), "a");
        assert_eq!(s(V::BoolValue(true)), "true");
        assert_eq!(s(V::IntValue(-3)), "-3");
        assert_eq!(s(V::DoubleValue(1.5)), "1.5");
        assert_eq!(s(V::DoubleValue(1e21)), "1e+21");
        assert_eq!(s(V::DoubleValue(1.5e-7)), "1.5e-7");
        assert_eq!(s(V::BytesValue(vec![1, 2, 3])), "AQID");
        let array = opentelemetry_proto::tonic::common::v1::ArrayValue {
            values: vec![
                AnyValue { value: Some(V::IntValue(1)) },
                AnyValue { value: Some(V::StringValue("x".into())) },
            ],
        };
        assert_eq!(s(V::ArrayValue(array)), r#"[1,"x"]"#);
        assert_eq!(value_string(None), "");
        assert_eq!(bound_string(0.25), "0.25");
        assert_eq!(bound_string(1e21), "1000000000000000000000");
        assert_eq!(bound_string(f64::INFINITY), "+Inf");
    }
}
