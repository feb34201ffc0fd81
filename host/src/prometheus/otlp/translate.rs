//! OTLP metrics as Prometheus series, as Prometheus' OTLP receiver
//! (`otlptranslator`, `FromMetrics`) turns them into samples, then into the
//! node's write batches (the series key is the metric name, every other
//! label a tag):
//!
//! - a gauge's points are samples of `<name>`; a cumulative sum's of
//!   `<name>_total` when monotonic (a counter), of `<name>` otherwise;
//! - a cumulative histogram's point is `<name>_sum`, `<name>_count` and one
//!   `<name>_bucket{le="<bound>"}` per bound, counts made cumulative, the
//!   `+Inf` bucket being the point's count;
//! - a summary's point is `<name>_sum`, `<name>_count` and one
//!   `<name>{quantile="<q>"}` per quantile;
//! - the resource's `service.name` (after `service.namespace` and `/` when
//!   there is one) is the `job` label, `service.instance.id` the `instance`
//!   label; its other attributes are the labels of one `target_info` sample
//!   of value 1 at the resource's latest time;
//! - times are milliseconds (nanoseconds cut).
//!
//! Dropped and counted ([`Dropped`]), the rest still written: delta (and
//! unspecified) temporality, exponential histograms, points flagged "no
//! recorded value" (Prometheus writes a stale marker), non-finite values,
//! points without a value or a time, metrics without a name or a type.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint,
    SummaryDataPoint,
};

use super::names::{bound_string, label_name, metric_name, value_string, Kind};
use crate::prometheus::dropped::Dropped;

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// A request that would turn into more series text than allowed: a few
/// bytes of labels repeated on every bucket of a histogram with many
/// bounds can grow a small body a thousandfold.
#[derive(Debug, thiserror::Error)]
#[error("the request expands to more than {limit} bytes of series and points once translated (histogram buckets and summary quantiles repeat every label); send fewer points a request")]
pub struct TooLarge {
    pub limit: usize,
}

/// A request translated: one batch per series, and what was dropped.
#[derive(Debug, Default)]
pub struct Translated {
    pub batches: Vec<SeriesPoints>,
    pub dropped: Dropped,
}

/// The labels the resource gives every series of it.
struct Resource {
    job: Option<String>,
    instance: Option<String>,
}

impl Resource {
    fn of(attributes: &[KeyValue]) -> Resource {
        let get = |key: &str| attributes.iter().find(|kv| kv.key == key).map(|kv| value_string(kv.value.as_ref()));
        let job = get(SERVICE_NAME).map(|name| match get(SERVICE_NAMESPACE) {
            Some(namespace) => format!("{namespace}/{name}"),
            None => name,
        });
        Resource { job, instance: get(SERVICE_INSTANCE_ID) }
    }
}

/// Samples gathered by series (name, then labels), bounded in size.
struct Out {
    /// By name, then labels: found from borrowed keys, copied only for a
    /// new series.
    series: BTreeMap<String, BTreeMap<BTreeMap<String, String>, PointBatch>>,
    dropped: Dropped,
    bytes: usize,
    limit: usize,
}

/// The bytes a sample costs, besides its series.
const SAMPLE_BYTES: usize = 16;

impl Out {
    fn sample(&mut self, name: &str, labels: &BTreeMap<String, String>, t: i64, v: f64) -> Result<(), TooLarge> {
        if !v.is_finite() {
            self.dropped.non_finite += 1;
            return Ok(());
        }
        if !self.series.contains_key(name) {
            self.series.insert(name.to_owned(), BTreeMap::new());
        }
        let by_labels = self.series.get_mut(name).expect("inserted above");
        if !by_labels.contains_key(labels) {
            self.bytes += name.len() + labels.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>();
            by_labels.insert(labels.clone(), PointBatch::new());
        }
        let batch = by_labels.get_mut(labels).expect("inserted above");
        self.bytes += SAMPLE_BYTES;
        if self.bytes > self.limit {
            return Err(TooLarge { limit: self.limit });
        }
        batch.push(t, v);
        Ok(())
    }

    /// A point's time in milliseconds; `None`, counted as dropped, for a
    /// point without a time or flagged "no recorded value".
    fn time_of(&mut self, time_unix_nano: u64, flags: u32) -> Option<i64> {
        let Some(t) = millis(time_unix_nano) else {
            self.dropped.invalid += 1;
            return None;
        };
        if flags & NO_RECORDED_VALUE != 0 {
            self.dropped.stale += 1;
            return None;
        }
        Some(t)
    }
}

/// The labels of a point: its attributes (keys sanitized, values of keys
/// that sanitize alike joined with `;` in key order, `skip` left out), then
/// the resource's `job` and `instance`. `__name__` and empty values are no
/// labels.
fn labels_of(resource: &Resource, attributes: &[KeyValue], skip: &[&str]) -> BTreeMap<String, String> {
    let mut sorted: Vec<&KeyValue> = attributes.iter().filter(|kv| !skip.contains(&kv.key.as_str())).collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut labels = BTreeMap::new();
    for kv in sorted {
        let value = value_string(kv.value.as_ref());
        match labels.entry(label_name(&kv.key)) {
            Entry::Occupied(mut e) => {
                let joined: &mut String = e.get_mut();
                joined.push(';');
                joined.push_str(&value);
            }
            Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }
    if let Some(job) = &resource.job {
        labels.insert("job".into(), job.clone());
    }
    if let Some(instance) = &resource.instance {
        labels.insert("instance".into(), instance.clone());
    }
    labels.retain(|k, v| !k.is_empty() && k != "__name__" && !v.is_empty());
    labels
}

/// Nanoseconds as milliseconds; `None` for a point without a time.
fn millis(nanos: u64) -> Option<i64> {
    (nanos != 0).then_some((nanos / 1_000_000) as i64)
}

fn cumulative(temporality: i32) -> bool {
    temporality == AggregationTemporality::Cumulative as i32
}

/// The times of a metric's points, in nanoseconds, whatever its type.
fn point_times(metric: &Metric) -> Box<dyn Iterator<Item = u64> + '_> {
    match &metric.data {
        Some(Data::Gauge(g)) => Box::new(g.data_points.iter().map(|p| p.time_unix_nano)),
        Some(Data::Sum(s)) => Box::new(s.data_points.iter().map(|p| p.time_unix_nano)),
        Some(Data::Histogram(h)) => Box::new(h.data_points.iter().map(|p| p.time_unix_nano)),
        Some(Data::ExponentialHistogram(h)) => Box::new(h.data_points.iter().map(|p| p.time_unix_nano)),
        Some(Data::Summary(s)) => Box::new(s.data_points.iter().map(|p| p.time_unix_nano)),
        None => Box::new(std::iter::empty()),
    }
}

/// How many data points a metric has (what is dropped with it); a metric
/// without data is one.
fn point_count(metric: &Metric) -> u64 {
    if metric.data.is_none() {
        1
    } else {
        point_times(metric).count() as u64
    }
}

fn number_points(out: &mut Out, resource: &Resource, name: &str, points: &[NumberDataPoint]) -> Result<(), TooLarge> {
    for p in points {
        let Some(t) = out.time_of(p.time_unix_nano, p.flags) else { continue };
        let v = match p.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None => {
                out.dropped.invalid += 1;
                continue;
            }
        };
        out.sample(name, &labels_of(resource, &p.attributes, &[]), t, v)?;
    }
    Ok(())
}

fn histogram_points(
    out: &mut Out,
    resource: &Resource,
    name: &str,
    points: &[HistogramDataPoint],
) -> Result<(), TooLarge> {
    let (sum, count, bucket) = (format!("{name}_sum"), format!("{name}_count"), format!("{name}_bucket"));
    for p in points {
        let Some(t) = out.time_of(p.time_unix_nano, p.flags) else { continue };
        let mut labels = labels_of(resource, &p.attributes, &[]);
        if let Some(s) = p.sum {
            out.sample(&sum, &labels, t, s)?;
        }
        out.sample(&count, &labels, t, p.count as f64)?;
        let mut total = 0u64;
        for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
            total = total.saturating_add(*n);
            labels.insert("le".into(), bound_string(*bound));
            out.sample(&bucket, &labels, t, total as f64)?;
        }
        labels.insert("le".into(), "+Inf".into());
        out.sample(&bucket, &labels, t, p.count as f64)?;
    }
    Ok(())
}

fn summary_points(out: &mut Out, resource: &Resource, name: &str, points: &[SummaryDataPoint]) -> Result<(), TooLarge> {
    let (sum, count) = (format!("{name}_sum"), format!("{name}_count"));
    for p in points {
        let Some(t) = out.time_of(p.time_unix_nano, p.flags) else { continue };
        let mut labels = labels_of(resource, &p.attributes, &[]);
        out.sample(&sum, &labels, t, p.sum)?;
        out.sample(&count, &labels, t, p.count as f64)?;
        for q in &p.quantile_values {
            labels.insert("quantile".into(), bound_string(q.quantile));
            out.sample(name, &labels, t, q.value)?;
        }
    }
    Ok(())
}

fn metric(out: &mut Out, resource: &Resource, m: &Metric) -> Result<(), TooLarge> {
    let kind = match &m.data {
        Some(Data::Gauge(_)) => Kind::Gauge,
        Some(Data::Sum(s)) if s.is_monotonic => Kind::Counter,
        _ => Kind::Other,
    };
    let name = metric_name(&m.name, &m.unit, kind);
    if name.is_empty() || m.data.is_none() {
        out.dropped.invalid += point_count(m);
        return Ok(());
    }
    match &m.data {
        Some(Data::Gauge(g)) => number_points(out, resource, &name, &g.data_points),
        Some(Data::Sum(s)) if cumulative(s.aggregation_temporality) => {
            number_points(out, resource, &name, &s.data_points)
        }
        Some(Data::Histogram(h)) if cumulative(h.aggregation_temporality) => {
            histogram_points(out, resource, &name, &h.data_points)
        }
        Some(Data::Summary(s)) => summary_points(out, resource, &name, &s.data_points),
        Some(Data::Sum(_) | Data::Histogram(_)) => {
            out.dropped.delta += point_count(m);
            Ok(())
        }
        Some(Data::ExponentialHistogram(_)) => {
            out.dropped.histograms += point_count(m);
            Ok(())
        }
        None => Ok(()),
    }
}

/// Translates a request; `limit` bounds the bytes of series text and
/// points it may turn into.
pub fn translate(request: &ExportMetricsServiceRequest, limit: usize) -> Result<Translated, TooLarge> {
    let mut out = Out { series: BTreeMap::new(), dropped: Dropped::default(), bytes: 0, limit };
    for rm in &request.resource_metrics {
        let attributes = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let resource = Resource::of(attributes);
        let mut newest = 0;
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            newest = newest.max(point_times(m).max().unwrap_or(0));
            metric(&mut out, &resource, m)?;
        }
        // `target_info`: the resource's other attributes, once, when it has
        // any and a `job` or `instance` to join them on.
        let identifying = [SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID];
        let others = attributes.iter().any(|kv| !identifying.contains(&kv.key.as_str()));
        if let (true, Some(t), true) = (others, millis(newest), resource.job.is_some() || resource.instance.is_some()) {
            out.sample("target_info", &labels_of(&resource, attributes, &identifying), t, 1.0)?;
        }
    }
    let batches = out
        .series
        .into_iter()
        .flat_map(|(name, by_labels)| {
            by_labels.into_iter().map(move |(tags, mut points)| {
                points.sort_dedup();
                SeriesPoints { series: Series::new(name.clone(), tags, BTreeMap::new()), points }
            })
        })
        .collect();
    Ok(Translated { batches, dropped: out.dropped })
}
