//! Samples other than points (interface 1.2): values a backend stores as
//! opaque encoded bytes, such as Heroic's distribution points (a serialised
//! t-digest per timestamp).
//!
//! One set of types serves every such kind: a [`SampleKind`] number says
//! what the bytes are, and a columnar [`SampleBatch`] carries them (one
//! vector of timestamps, one of concatenated bytes, one of end offsets), so
//! a batch crosses the boundary in O(1) and nothing is allocated per
//! sample. Spreads ([`SampleKind::SPREAD`], [`Spread`]) and t-digest points
//! ([`SampleKind::TDIGEST`]) were added this way within 1.2: a new number
//! and a capability bit, which a plugin built before them neither declares
//! nor is asked for; a later minor version adds a kind the same way, and
//! the types and methods stay as they are.

use abi_stable::std_types::RVec;
use abi_stable::StableAbi;

use crate::types::{MetricCapabilities, Series, Tag, TimeRange};

/// What the bytes of a sample are. An integer with named values rather
/// than a Rust `enum`, so that a later minor version can add kinds without
/// changing the layout; a backend meeting a kind it does not know answers
/// `Unsupported`.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SampleKind(pub u32);

impl SampleKind {
    /// Heroic's `distributionPoints`: each sample is a t-digest serialised
    /// as Heroic's clients write it (com.tdunning `MergingDigest`, verbose
    /// or small encoding), stored and returned unchanged.
    pub const DISTRIBUTION: SampleKind = SampleKind(1);
    /// Heroic's `spreads`: each sample is the summary of the values of one
    /// period, `count, sum, sum2, min, max`, as the 40 bytes of
    /// [`Spread::encode`].
    pub const SPREAD: SampleKind = SampleKind(2);
    /// Heroic's `tdigestPoints`: a t-digest per timestamp, like
    /// [`DISTRIBUTION`](Self::DISTRIBUTION) (same encodings, stored and
    /// returned unchanged), but a kind of its own: Heroic keeps the two
    /// apart (the `tdigestPoints` source reads only these), so a backend
    /// does too.
    pub const TDIGEST: SampleKind = SampleKind(3);

    /// The capability bit a backend declares when it stores this kind, or
    /// `None` for a kind this version does not know.
    pub fn capability(self) -> Option<MetricCapabilities> {
        match self {
            SampleKind::DISTRIBUTION => Some(MetricCapabilities::DISTRIBUTIONS),
            SampleKind::SPREAD => Some(MetricCapabilities::SPREADS),
            SampleKind::TDIGEST => Some(MetricCapabilities::TDIGESTS),
            _ => None,
        }
    }

    /// Heroic's name of the kind (`distributionPoints`, `spreads`,
    /// `tdigestPoints`), for messages.
    pub fn name(self) -> &'static str {
        match self {
            SampleKind::DISTRIBUTION => "distributionPoints",
            SampleKind::SPREAD => "spreads",
            SampleKind::TDIGEST => "tdigestPoints",
            _ => "unknown sample kind",
        }
    }
}

/// One spread sample (Heroic's `Spread`): a summary of the values of one
/// period. Encoded as 40 little-endian bytes, `count` (u64) then `sum`,
/// `sum2`, `min`, `max` (f64), so a batch of spreads is a plain
/// [`SampleBatch`] and every backend that stores opaque samples stores
/// spreads too.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Number of values summarised.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum2: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// Length of the encoding.
    pub const ENCODED_LEN: usize = 40;

    /// The 40-byte encoding.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0..8].copy_from_slice(&self.count.to_le_bytes());
        for (i, v) in [self.sum, self.sum2, self.min, self.max].into_iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads [`encode`](Self::encode)'s bytes; `None` for any other length.
    pub fn decode(bytes: &[u8]) -> Option<Spread> {
        let bytes: &[u8; Self::ENCODED_LEN] = bytes.try_into().ok()?;
        let word = |i: usize| -> [u8; 8] { bytes[8 * i..8 * i + 8].try_into().expect("8 bytes") };
        Some(Spread {
            count: u64::from_le_bytes(word(0)),
            sum: f64::from_le_bytes(word(1)),
            sum2: f64::from_le_bytes(word(2)),
            min: f64::from_le_bytes(word(3)),
            max: f64::from_le_bytes(word(4)),
        })
    }
}

/// A columnar batch of encoded samples: sample `i` has timestamp
/// `timestamps[i]` (milliseconds) and the bytes
/// `data[ends[i - 1]..ends[i]]` (from 0 for the first). `timestamps` and
/// `ends` always have the same length, and `ends` never decreases.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct SampleBatch {
    /// Milliseconds since the Unix epoch, one per sample.
    pub timestamps: RVec<i64>,
    /// The end offset of each sample's bytes in `data`.
    pub ends: RVec<u32>,
    /// The bytes of every sample, one after the other.
    pub data: RVec<u8>,
}

/// A sample batch whose columns do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleBatchError {
    /// `timestamps` and `ends` differ in length.
    #[error("sample batch has {timestamps} timestamps but {ends} end offsets")]
    LengthMismatch {
        /// Number of timestamps.
        timestamps: usize,
        /// Number of end offsets.
        ends: usize,
    },
    /// An end offset is smaller than the one before or past the data.
    #[error("sample {index} of the batch has a bad end offset {end} (data has {len} bytes)")]
    BadOffset {
        /// Index of the sample.
        index: usize,
        /// Its end offset.
        end: u32,
        /// Length of `data`.
        len: usize,
    },
}

impl SampleBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `samples` samples of `bytes` bytes in all.
    pub fn with_capacity(samples: usize, bytes: usize) -> Self {
        SampleBatch {
            timestamps: RVec::with_capacity(samples),
            ends: RVec::with_capacity(samples),
            data: RVec::with_capacity(bytes),
        }
    }

    /// Appends one sample.
    ///
    /// # Panics
    /// When the batch would hold 4 GiB of bytes or more (offsets are `u32`).
    pub fn push(&mut self, timestamp: i64, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        let end = u32::try_from(self.data.len()).expect("a sample batch holds less than 4 GiB");
        self.timestamps.push(timestamp);
        self.ends.push(end);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the batch has no samples.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The bytes of sample `i`.
    ///
    /// # Panics
    /// When `i` is out of range or the batch is not [valid](Self::validate).
    pub fn bytes(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    /// The samples as `(timestamp, bytes)`, in batch order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> + '_ {
        (0..self.len()).map(move |i| (self.timestamps[i], self.bytes(i)))
    }

    /// Checks that the columns fit together; a batch from another library
    /// is checked before its bytes are sliced.
    pub fn validate(&self) -> Result<(), SampleBatchError> {
        if self.timestamps.len() != self.ends.len() {
            return Err(SampleBatchError::LengthMismatch { timestamps: self.timestamps.len(), ends: self.ends.len() });
        }
        let mut previous = 0u32;
        for (index, &end) in self.ends.iter().enumerate() {
            if end < previous || end as usize > self.data.len() {
                return Err(SampleBatchError::BadOffset { index, end, len: self.data.len() });
            }
            previous = end;
        }
        Ok(())
    }

    /// Whether timestamps are strictly increasing (sorted, no duplicates).
    pub fn is_strictly_sorted(&self) -> bool {
        self.timestamps.windows(2).all(|w| w[0] < w[1])
    }

    /// Sorts by timestamp; for a repeated timestamp the last sample written
    /// wins (as for points). Copies the bytes only when out of order.
    pub fn sort_dedup(&mut self) {
        if self.is_strictly_sorted() {
            return;
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by_key(|&i| self.timestamps[i]); // stable: later writes stay later
        let mut keep: Vec<usize> = Vec::with_capacity(idx.len());
        for i in idx {
            match keep.last_mut() {
                Some(last) if self.timestamps[*last] == self.timestamps[i] => *last = i,
                _ => keep.push(i),
            }
        }
        let mut out = SampleBatch::with_capacity(keep.len(), self.data.len());
        for i in keep {
            out.push(self.timestamps[i], self.bytes(i));
        }
        *self = out;
    }
}

/// Samples of one series, to write.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct SeriesSamples {
    /// The series they belong to.
    pub series: Series,
    /// Its samples, sorted by timestamp without duplicates.
    pub samples: SampleBatch,
}

/// A write of samples of one kind.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct SampleWriteRequest {
    /// What the bytes are.
    pub kind: SampleKind,
    /// The samples, per series.
    pub batch: RVec<SeriesSamples>,
}

/// A read of samples of one kind.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct SampleFetchRequest {
    /// What to read.
    pub kind: SampleKind,
    /// The series to read, as the metadata backend returned them.
    pub series: RVec<Series>,
    /// Samples with a timestamp in `(start, end]`.
    pub range: TimeRange,
    /// Stop after about this many samples in total (0: no limit); a backend
    /// that stops early sets [`SampleFetchResponse::limited`].
    pub sample_limit: u64,
}

/// One series read back: `request_index` points into
/// [`SampleFetchRequest::series`].
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct FetchedSamples {
    /// Index of the series in the request.
    pub request_index: u32,
    /// Resource tags of this variant of the series (as for points).
    pub resource: RVec<Tag>,
    /// Sorted by timestamp, no duplicate timestamps.
    pub samples: SampleBatch,
}

/// The answer to a [`SampleFetchRequest`].
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct SampleFetchResponse {
    /// Series with samples in the range; series without any may be left out.
    pub series: RVec<FetchedSamples>,
    /// True when `sample_limit` stopped the read early.
    pub limited: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_slice() {
        let mut b = SampleBatch::new();
        b.push(10, b"abc");
        b.push(20, b"");
        b.push(30, b"de");
        assert_eq!(b.len(), 3);
        assert_eq!(b.validate(), Ok(()));
        let got: Vec<(i64, Vec<u8>)> = b.iter().map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(got, vec![(10, b"abc".to_vec()), (20, vec![]), (30, b"de".to_vec())]);
    }

    #[test]
    fn sort_dedup_keeps_the_last_write() {
        let mut b = SampleBatch::new();
        b.push(30, b"x");
        b.push(10, b"first");
        b.push(10, b"second");
        b.sort_dedup();
        let got: Vec<(i64, Vec<u8>)> = b.iter().map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(got, vec![(10, b"second".to_vec()), (30, b"x".to_vec())]);
    }

    #[test]
    fn validate_refuses_bad_columns() {
        let mut b = SampleBatch::new();
        b.push(1, b"ab");
        b.ends.push(1);
        assert!(matches!(b.validate(), Err(SampleBatchError::LengthMismatch { .. })));
        b.timestamps.push(2);
        assert!(matches!(b.validate(), Err(SampleBatchError::BadOffset { index: 1, .. })));
        let bad = SampleBatch { timestamps: vec![1].into(), ends: vec![5].into(), data: vec![0u8; 2].into() };
        assert!(matches!(bad.validate(), Err(SampleBatchError::BadOffset { index: 0, end: 5, len: 2 })));
    }

    #[test]
    fn spreads_round_trip_in_40_bytes() {
        let s = Spread { count: 3, sum: 6.5, sum2: -0.0, min: f64::NEG_INFINITY, max: f64::NAN };
        let bytes = s.encode();
        let back = Spread::decode(&bytes).expect("40 bytes decode");
        assert_eq!((back.count, back.sum, back.min), (3, 6.5, f64::NEG_INFINITY));
        assert!(back.sum2.is_sign_negative() && back.max.is_nan());
        assert_eq!(Spread::decode(&bytes[..39]), None);
        assert_eq!(Spread::decode(&[0u8; 41]), None);
    }

    #[test]
    fn kinds_map_to_capabilities() {
        assert_eq!(SampleKind::DISTRIBUTION.capability(), Some(MetricCapabilities::DISTRIBUTIONS));
        assert_eq!(SampleKind::SPREAD.capability(), Some(MetricCapabilities::SPREADS));
        assert_eq!(SampleKind::TDIGEST.capability(), Some(MetricCapabilities::TDIGESTS));
        assert_eq!(SampleKind(99).capability(), None);
    }
}
