//! Samples other than points (interface 1.2): values a backend stores as
//! opaque encoded bytes, such as Heroic's distribution points (a serialised
//! t-digest per timestamp).
//!
//! One set of types serves every such kind: a [`SampleKind`] number says
//! what the bytes are, and a columnar [`SampleBatch`] carries them (one
//! vector of timestamps, one of concatenated bytes, one of end offsets), so
//! a batch crosses the boundary in O(1) and nothing is allocated per
//! sample. A later minor version adds a kind (spreads, say) by naming a new
//! number and a capability bit; the types and methods stay as they are.

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
    // 2 is kept for spreads (count, sum, sum2, min, max), should they come.

    /// The capability bit a backend declares when it stores this kind, or
    /// `None` for a kind this version does not know.
    pub fn capability(self) -> Option<MetricCapabilities> {
        match self {
            SampleKind::DISTRIBUTION => Some(MetricCapabilities::DISTRIBUTIONS),
            _ => None,
        }
    }

    /// Heroic's name of the kind (`distributionPoints`), for messages.
    pub fn name(self) -> &'static str {
        match self {
            SampleKind::DISTRIBUTION => "distributionPoints",
            _ => "unknown sample kind",
        }
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
    fn kinds_map_to_capabilities() {
        assert_eq!(SampleKind::DISTRIBUTION.capability(), Some(MetricCapabilities::DISTRIBUTIONS));
        assert_eq!(SampleKind(99).capability(), None);
    }
}
