//! Prometheus remote-write 2.0: the `io.prometheus.write.v2.Request`
//! protobuf (snappy block compressed), whose series name their labels by
//! references into one table of strings, read into the node's write
//! batches with 1.0's mapping ([`super::remote_write`]).
//!
//! Read: symbols, label references, samples. Counted as dropped: native
//! histograms. Ignored: exemplars, metadata (type, help, unit) and created
//! timestamps, which the node has nowhere to keep. A request whose table
//! does not start with the empty string, or whose references are odd in
//! number or point past the table, is refused whole.

use super::remote_write::{decompress, series_of, DecodeError, Decoded, NativeHistogram, Sample};

/// `io.prometheus.write.v2.Request` (`prompb/io/prometheus/write/v2/types.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// Every string of the request once; `symbols[0]` is `""`.
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// `io.prometheus.write.v2.TimeSeries`, as far as this node reads it
/// (exemplars, field 4, metadata, 5, and the created timestamp, 6, are
/// skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Pairs of indexes into `symbols`: name, value, name, value …
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Same fields as 1.0's sample.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<NativeHistogram>,
}

/// Decompresses and reads a remote-write 2.0 body; `max_decompressed` as
/// for 1.0.
pub fn decode(body: &[u8], max_decompressed: usize) -> Result<Decoded, DecodeError> {
    let raw = decompress(body, max_decompressed)?;
    let request = <Request as prost::Message>::decode(raw.as_slice())?;
    let symbols = &request.symbols;
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(DecodeError::SymbolsStart);
    }
    let mut out = Decoded::default();
    for (index, ts) in request.timeseries.iter().enumerate() {
        out.dropped.histograms += ts.histograms.len() as u64;
        let refs = &ts.labels_refs;
        if refs.len() % 2 != 0 {
            return Err(DecodeError::OddLabelRefs { index, count: refs.len() });
        }
        let symbol = |reference: u32| {
            symbols.get(reference as usize).ok_or(DecodeError::LabelRef { index, reference, symbols: symbols.len() })
        };
        let mut labels = Vec::with_capacity(refs.len() / 2);
        for pair in refs.chunks_exact(2) {
            labels.push((symbol(pair[0])?.clone(), symbol(pair[1])?.clone()));
        }
        out.push(series_of(index, labels)?, &ts.samples);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::remote_write::STALE_NAN;
    use proptest::prelude::*;
    use prost::Message;

    fn body(request: &Request) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap()
    }

    fn sample(timestamp: i64, value: f64) -> Sample {
        Sample { value, timestamp }
    }

    #[test]
    fn labels_are_read_through_the_symbols_table() {
        let request = Request {
            symbols: ["", "__name__", "up", "job", "node", "instance", "a:9100"].map(String::from).to_vec(),
            timeseries: vec![
                TimeSeries {
                    labels_refs: vec![1, 2, 3, 4, 5, 6],
                    samples: vec![sample(2000, 1.0), sample(1000, 0.0), sample(3000, f64::from_bits(STALE_NAN))],
                    histograms: vec![NativeHistogram {}],
                },
                // An empty value (symbol 0) is no label.
                TimeSeries { labels_refs: vec![1, 2, 3, 0], samples: vec![sample(1000, 5.0)], histograms: vec![] },
            ],
        };
        let decoded = decode(&body(&request), 1 << 20).unwrap();
        assert_eq!((decoded.dropped.stale, decoded.dropped.histograms), (1, 1));
        let got: Vec<String> = decoded
            .batches
            .iter()
            .map(|b| {
                let tags: Vec<String> = b.series.tags.iter().map(|t| format!("{}={}", t.key, t.value)).collect();
                format!("{}{{{}}} {:?} {:?}", b.series.key, tags.join(","), b.points.timestamps, b.points.values)
            })
            .collect();
        assert_eq!(got, ["up{instance=a:9100,job=node} [1000, 2000] [0.0, 1.0]", "up{} [1000] [5.0]"]);
    }

    #[test]
    fn broken_tables_and_references_are_refused() {
        let symbols = ["", "__name__", "m"].map(String::from).to_vec();
        let series =
            |refs: Vec<u32>| TimeSeries { labels_refs: refs, samples: vec![sample(1, 1.0)], histograms: vec![] };
        let odd = Request { symbols: symbols.clone(), timeseries: vec![series(vec![1, 2, 1])] };
        assert!(matches!(decode(&body(&odd), 1 << 20), Err(DecodeError::OddLabelRefs { index: 0, count: 3 })));
        let past = Request { symbols: symbols.clone(), timeseries: vec![series(vec![1, 9])] };
        let e = decode(&body(&past), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("symbol 9, past the 3 symbols"), "{e}");
        let start = Request { symbols: ["x", "__name__", "m"].map(String::from).to_vec(), timeseries: vec![] };
        assert!(matches!(decode(&body(&start), 1 << 20), Err(DecodeError::SymbolsStart)));
        let unnamed = Request { symbols, timeseries: vec![series(vec![2, 2])] };
        assert!(matches!(decode(&body(&unnamed), 1 << 20), Err(DecodeError::NoName { index: 0 })));
    }

    proptest! {
        /// Any bytes at all: an answer, never a panic.
        #[test]
        fn any_body_is_answered(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes, 1 << 16);
            let compressed = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
            let _ = decode(&compressed, 1 << 16);
        }

        /// Any references into any table: read or refused, never a panic.
        #[test]
        fn any_references_are_answered(
            symbols in proptest::collection::vec("[a-z_]{0,3}", 0..6),
            refs in proptest::collection::vec(0u32..8, 0..9),
        ) {
            let request = Request {
                symbols,
                timeseries: vec![TimeSeries { labels_refs: refs, samples: vec![sample(1, 1.0)], histograms: vec![] }],
            };
            let _ = decode(&body(&request), 1 << 20);
        }
    }
}
