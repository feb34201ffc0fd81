//! Prometheus remote-write 1.0: the `WriteRequest` protobuf (snappy block
//! compressed) read into the node's write batches; what 2.0
//! (`remote_write_v2`) shares with it.
//!
//! The mapping (documented in `docs/prometheus.md`):
//! - `__name__` becomes the series key and every other label a tag; a label
//!   with an empty value is no label, as in Prometheus;
//! - sample timestamps are milliseconds since the epoch, as Heroic's are;
//! - what the node cannot store is dropped and counted, not refused, so that
//!   one value does not make the sender drop its whole batch: stale markers
//!   (Prometheus' special NaN saying a series ended, which is not a value),
//!   other non-finite values, and native histograms;
//! - a request that cannot be read (not snappy, not the protobuf, too large
//!   once decompressed, a series without a name or with a label twice) is
//!   refused whole: sending it again cannot help.

use std::collections::BTreeMap;

use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints};

use super::decoded_size;
use super::dropped::Dropped;

/// The `WriteRequest` of `prometheus/prompb/remote.proto`, as far as this
/// node reads it (metadata, field 3, is skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries` (`types.proto`). Exemplars (field 3) are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histograms: only counted (they are dropped), so none of their
    /// fields is read.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<NativeHistogram>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A native histogram, unread.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NativeHistogram {}

/// The bit pattern of Prometheus' stale marker (`value.StaleNaN`).
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the body is not snappy-compressed (block format): {0}")]
    Snappy(snap::Error),
    #[error("the body decompresses to {size} bytes, more than the {limit} allowed (server.max_write_body_bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("the body would take about {estimate} bytes once decoded, more than the {limit} allowed (a multiple of server.max_write_body_bytes): many small messages decode to many times their size; send fewer a request")]
    DecodesTooLarge { estimate: usize, limit: usize },
    #[error("the body is not a remote-write WriteRequest protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("series {index} has no metric name (label __name__)")]
    NoName { index: usize },
    #[error("series {index} ({name}) has the label {label:?} twice")]
    DuplicateLabel { index: usize, name: String, label: String },
    #[error("the symbols table does not start with the empty string, as remote-write 2.0 requires")]
    SymbolsStart,
    #[error("series {index} has an odd number of label references ({count}): they come in name, value pairs")]
    OddLabelRefs { index: usize, count: usize },
    #[error("series {index} refers to symbol {reference}, past the {symbols} symbols of the request")]
    LabelRef { index: usize, reference: u32, symbols: usize },
}

/// A request read: one batch per series with samples (series whose samples
/// were all dropped are left out), and what was dropped.
#[derive(Debug, Default)]
pub struct Decoded {
    pub batches: Vec<SeriesPoints>,
    pub dropped: Dropped,
}

/// Decompresses a snappy body. `max_decompressed` bounds the decompressed
/// size, which is checked from the snappy header before any of it is
/// allocated, and what it may decode to ([`decoded_size`]).
pub(crate) fn decompress(body: &[u8], max_decompressed: usize) -> Result<Vec<u8>, DecodeError> {
    let size = snap::raw::decompress_len(body).map_err(DecodeError::Snappy)?;
    if size > max_decompressed {
        return Err(DecodeError::TooLarge { size, limit: max_decompressed });
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(DecodeError::Snappy)?;
    let estimate = decoded_size::protobuf(&raw);
    if let Some(limit) = decoded_size::exceeds(estimate, max_decompressed) {
        return Err(DecodeError::DecodesTooLarge { estimate, limit });
    }
    Ok(raw)
}

impl Decoded {
    /// Adds a series' samples: the finite ones as points, the others
    /// counted as dropped; a series left without points is left out.
    pub(crate) fn push(&mut self, series: Series, samples: &[Sample]) {
        let mut points = PointBatch::with_capacity(samples.len());
        for s in samples {
            if s.value.is_finite() {
                points.push(s.timestamp, s.value);
            } else if s.value.to_bits() == STALE_NAN {
                self.dropped.stale += 1;
            } else {
                self.dropped.non_finite += 1;
            }
        }
        if points.is_empty() {
            return;
        }
        points.sort_dedup();
        self.batches.push(SeriesPoints { series, points });
    }
}

/// Decompresses and reads a remote-write 1.0 body (see [`decompress`] for
/// `max_decompressed`).
pub fn decode(body: &[u8], max_decompressed: usize) -> Result<Decoded, DecodeError> {
    let raw = decompress(body, max_decompressed)?;
    let request = <WriteRequest as prost::Message>::decode(raw.as_slice())?;
    let mut out = Decoded::default();
    for (index, ts) in request.timeseries.into_iter().enumerate() {
        out.dropped.histograms += ts.histograms.len() as u64;
        let labels = ts.labels.into_iter().map(|Label { name, value }| (name, value));
        let series = series_of(index, labels)?;
        out.push(series, &ts.samples);
    }
    Ok(out)
}

/// The series of a time series' labels: `__name__` is the key, the others
/// tags; empty values are no label.
pub(crate) fn series_of(
    index: usize,
    labels: impl IntoIterator<Item = (String, String)>,
) -> Result<Series, DecodeError> {
    use std::collections::btree_map::Entry;
    let mut name: Option<String> = None;
    let mut tags = BTreeMap::new();
    let mut duplicate = None;
    for (label, value) in labels {
        if value.is_empty() {
            continue;
        }
        if label == "__name__" {
            if name.replace(value).is_some() {
                duplicate = Some(label);
            }
            continue;
        }
        match tags.entry(label) {
            Entry::Occupied(e) => duplicate = Some(e.key().clone()),
            Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }
    let name = name.ok_or(DecodeError::NoName { index })?;
    if let Some(label) = duplicate {
        return Err(DecodeError::DuplicateLabel { index, name, label });
    }
    Ok(Series::new(name, tags, BTreeMap::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message;

    fn label(name: &str, value: &str) -> Label {
        Label { name: name.into(), value: value.into() }
    }

    fn body(request: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
    }

    fn series(labels: Vec<Label>, samples: &[(i64, f64)]) -> TimeSeries {
        let samples = samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect();
        TimeSeries { labels, samples, histograms: Vec::new() }
    }

    #[test]
    fn names_become_keys_labels_tags_and_unstorable_values_are_counted() {
        let request = WriteRequest {
            timeseries: vec![
                series(
                    vec![label("__name__", "up"), label("job", "node"), label("empty", "")],
                    &[(2000, 1.0), (1000, 0.0), (3000, f64::from_bits(STALE_NAN)), (4000, f64::INFINITY)],
                ),
                // Only a stale marker: no batch at all.
                series(vec![label("__name__", "gone")], &[(1000, f64::from_bits(STALE_NAN))]),
                TimeSeries {
                    labels: vec![label("__name__", "h")],
                    samples: Vec::new(),
                    histograms: vec![NativeHistogram {}, NativeHistogram {}],
                },
            ],
        };
        let decoded = decode(&body(&request), 1 << 20).unwrap();
        assert_eq!(decoded.dropped, Dropped { stale: 2, non_finite: 1, histograms: 2, ..Dropped::default() });
        assert_eq!(decoded.batches.len(), 1);
        let b = &decoded.batches[0];
        assert_eq!(b.series.key.as_str(), "up");
        let tags: Vec<(&str, &str)> = b.series.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
        assert_eq!(tags, [("job", "node")]);
        assert_eq!(b.points.timestamps.as_slice(), [1000, 2000]);
        assert_eq!(b.points.values.as_slice(), [0.0, 1.0]);
    }

    #[test]
    fn unreadable_requests_are_refused_with_the_reason() {
        let no_name = WriteRequest { timeseries: vec![series(vec![label("job", "x")], &[(1, 1.0)])] };
        assert!(matches!(decode(&body(&no_name), 1 << 20), Err(DecodeError::NoName { index: 0 })));
        let twice = WriteRequest {
            timeseries: vec![series(vec![label("__name__", "a"), label("x", "1"), label("x", "2")], &[(1, 1.0)])],
        };
        let e = decode(&body(&twice), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("\"x\" twice"), "{e}");
        assert!(matches!(decode(b"not snappy at all", 1 << 20), Err(DecodeError::Snappy(_))));
        let garbage = snap::raw::Encoder::new().compress_vec(&[0xff; 64]).unwrap();
        assert!(matches!(decode(&garbage, 1 << 20), Err(DecodeError::Protobuf(_))));
        // The size is read from the header: a small body claiming 1 GiB is
        // refused before anything is allocated.
        let mut bomb = Vec::new();
        let mut n = 1u64 << 30;
        while n >= 0x80 {
            bomb.push((n as u8) | 0x80);
            n >>= 7;
        }
        bomb.push(n as u8);
        assert!(matches!(decode(&bomb, 1 << 20), Err(DecodeError::TooLarge { size: 1_073_741_824, .. })));
        // Empty series, two bytes each, would decode to 36 times that:
        // refused before decoding.
        let empty = WriteRequest { timeseries: vec![series(vec![], &[]); 100_000] };
        let raw = empty.encode_to_vec();
        assert!(matches!(decode(&body(&empty), raw.len()), Err(DecodeError::DecodesTooLarge { .. })));
    }

    proptest! {
        /// Any bytes at all: an answer, never a panic.
        #[test]
        fn any_body_is_answered(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes, 1 << 16);
            let compressed = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
            let _ = decode(&compressed, 1 << 16);
        }

        /// Whatever finite samples are sent come back sorted, once per
        /// timestamp (the last one sent wins, as a later write would).
        #[test]
        fn samples_round_trip(samples in proptest::collection::vec((-50i64..50, -1e12f64..1e12), 1..64)) {
            let request = WriteRequest { timeseries: vec![series(vec![label("__name__", "m")], &samples)] };
            let decoded = decode(&body(&request), 1 << 20).unwrap();
            let want: BTreeMap<i64, f64> = samples.iter().copied().collect();
            let b = &decoded.batches[0];
            let got: Vec<(i64, f64)> =
                b.points.timestamps.iter().copied().zip(b.points.values.iter().copied()).collect();
            prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }
}
