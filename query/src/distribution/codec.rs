//! Heroic's distribution bytes: a t-digest serialised as com.tdunning
//! t-digest 3.2's `MergingDigest` does it (`asBytes` / `asSmallBytes`,
//! read back by `MergingDigest.fromBytes`), which is what Heroic's clients
//! write into `distributionPoints` and what its Bigtable backend stores.
//!
//! Both encodings are big-endian (Java's `ByteBuffer`):
//!
//! | encoding | layout |
//! |---|---|
//! | verbose (1) | `i32 1, f64 min, f64 max, f64 compression, i32 n, n × (f64 weight, f64 mean)` |
//! | small (2) | `i32 2, f64 min, f64 max, f32 compression, i16 meanCapacity, i16 bufferCapacity, i16 n, n × (f32 weight, f32 mean)` |
//!
//! Like `fromBytes`, bytes after the last centroid are ignored. Unlike it,
//! anything that would make a digest meaningless (a negative or non-finite
//! weight, a non-finite mean, a count the bytes cannot hold) is an error:
//! Heroic swallowed such failures while merging ("temp fix to handle
//! corrupted datapoint"); here they are refused when written.

/// The compression Heroic merges with (`TdigestInstanceUtils`), used as the
/// number of centroids the merged digest keeps.
pub const MERGE_COMPRESSION: usize = 100;

const VERBOSE: i32 = 1;
const SMALL: i32 = 2;

/// A decoded sketch: extremes, compression and centroids `(mean, weight)`
/// in the order they were written (sorted by mean in practice).
#[derive(Clone, Debug, PartialEq)]
pub struct Sketch {
    /// Smallest value added (`+inf` for an empty digest).
    pub min: f64,
    /// Largest value added (`-inf` for an empty digest).
    pub max: f64,
    /// The digest's compression parameter.
    pub compression: f64,
    /// `(mean, weight)` per centroid.
    pub centroids: Vec<(f64, f64)>,
}

/// Bytes that are not a sketch Heroic could have written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchError {
    /// The bytes end before the sketch does.
    #[error("t-digest bytes end early: {needed} bytes needed, {len} given")]
    Truncated {
        /// Bytes the header and centroids need.
        needed: usize,
        /// Bytes given.
        len: usize,
    },
    /// The first 4 bytes are neither 1 (verbose) nor 2 (small).
    #[error("unknown t-digest encoding {0} (expected 1, verbose, or 2, small)")]
    UnknownEncoding(i32),
    /// A negative centroid count, or (small encoding) more centroids than
    /// the digest says it holds.
    #[error("bad t-digest centroid count {0}")]
    BadCount(i64),
    /// A centroid whose mean or weight is not finite, or whose weight is negative.
    #[error("t-digest centroid {index} is invalid (mean {mean}, weight {weight})")]
    BadCentroid {
        /// Index of the centroid.
        index: usize,
        /// Its mean.
        mean: f64,
        /// Its weight.
        weight: f64,
    },
}

/// A big-endian cursor over the bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SketchError> {
        let end = self.at + N;
        let slice =
            self.bytes.get(self.at..end).ok_or(SketchError::Truncated { needed: end, len: self.bytes.len() })?;
        self.at = end;
        Ok(slice.try_into().expect("length checked"))
    }
    fn i32(&mut self) -> Result<i32, SketchError> {
        self.take().map(i32::from_be_bytes)
    }
    fn i16(&mut self) -> Result<i16, SketchError> {
        self.take().map(i16::from_be_bytes)
    }
    fn f64(&mut self) -> Result<f64, SketchError> {
        self.take().map(f64::from_be_bytes)
    }
    fn f32(&mut self) -> Result<f64, SketchError> {
        self.take().map(|b| f64::from(f32::from_be_bytes(b)))
    }
    /// Fails early when `n` centroids of `each` bytes cannot fit, so that a
    /// forged count allocates nothing.
    fn need(&self, n: usize, each: usize) -> Result<(), SketchError> {
        let needed = self.at.saturating_add(n.saturating_mul(each));
        if needed > self.bytes.len() {
            return Err(SketchError::Truncated { needed, len: self.bytes.len() });
        }
        Ok(())
    }
}

/// Decodes Heroic's distribution bytes (either encoding).
pub fn decode(bytes: &[u8]) -> Result<Sketch, SketchError> {
    let mut c = Cursor { bytes, at: 0 };
    let encoding = c.i32()?;
    let (min, max) = match encoding {
        VERBOSE | SMALL => (c.f64()?, c.f64()?),
        other => return Err(SketchError::UnknownEncoding(other)),
    };
    let (compression, n, small) = if encoding == VERBOSE {
        let compression = c.f64()?;
        let n = c.i32()?;
        (compression, i64::from(n), false)
    } else {
        let compression = c.f32()?;
        let capacity = c.i16()?;
        let _buffer = c.i16()?;
        let n = c.i16()?;
        // `fromBytes` sizes its arrays from `capacity`: more centroids
        // than that failed in Java.
        if n > capacity {
            return Err(SketchError::BadCount(i64::from(n)));
        }
        (compression, i64::from(n), true)
    };
    let n = usize::try_from(n).map_err(|_| SketchError::BadCount(n))?;
    c.need(n, if small { 8 } else { 16 })?;
    let mut centroids = Vec::with_capacity(n);
    for index in 0..n {
        let (weight, mean) = if small { (c.f32()?, c.f32()?) } else { (c.f64()?, c.f64()?) };
        if !(mean.is_finite() && weight.is_finite() && weight >= 0.0) {
            return Err(SketchError::BadCentroid { index, mean, weight });
        }
        centroids.push((mean, weight));
    }
    Ok(Sketch { min, max, compression, centroids })
}

impl Sketch {
    /// Total weight (the number of values added).
    pub fn count(&self) -> f64 {
        self.centroids.iter().map(|c| c.1).sum()
    }

    /// The verbose encoding (`asBytes`).
    pub fn encode_verbose(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 16 * self.centroids.len());
        out.extend_from_slice(&VERBOSE.to_be_bytes());
        out.extend_from_slice(&self.min.to_be_bytes());
        out.extend_from_slice(&self.max.to_be_bytes());
        out.extend_from_slice(&self.compression.to_be_bytes());
        out.extend_from_slice(&(self.centroids.len() as i32).to_be_bytes());
        for &(mean, weight) in &self.centroids {
            out.extend_from_slice(&weight.to_be_bytes());
            out.extend_from_slice(&mean.to_be_bytes());
        }
        out
    }

    /// The small encoding (`asSmallBytes`), with Java's default capacities
    /// for a compression of 100 when the centroids fit them.
    pub fn encode_small(&self) -> Vec<u8> {
        let n = self.centroids.len() as i16;
        let mut out = Vec::with_capacity(30 + 8 * self.centroids.len());
        out.extend_from_slice(&SMALL.to_be_bytes());
        out.extend_from_slice(&self.min.to_be_bytes());
        out.extend_from_slice(&self.max.to_be_bytes());
        out.extend_from_slice(&(self.compression as f32).to_be_bytes());
        out.extend_from_slice(&n.max(100).to_be_bytes());
        out.extend_from_slice(&n.max(100).saturating_mul(5).to_be_bytes());
        out.extend_from_slice(&n.to_be_bytes());
        for &(mean, weight) in &self.centroids {
            out.extend_from_slice(&(weight as f32).to_be_bytes());
            out.extend_from_slice(&(mean as f32).to_be_bytes());
        }
        out
    }

    /// The sketch as a mergeable digest of the `tdigest` crate keeping
    /// [`MERGE_COMPRESSION`] centroids. Extremes are widened to the
    /// centroid means, which the small encoding rounds to `f32`.
    pub fn to_tdigest(&self) -> tdigest::TDigest {
        let centroids: Vec<tdigest::Centroid> = self
            .centroids
            .iter()
            .filter(|c| c.1 > 0.0)
            .map(|&(mean, weight)| tdigest::Centroid::new(mean, weight))
            .collect();
        if centroids.is_empty() {
            return tdigest::TDigest::new_with_size(MERGE_COMPRESSION);
        }
        let lo = centroids.iter().map(|c| c.mean()).fold(f64::INFINITY, f64::min);
        let hi = centroids.iter().map(|c| c.mean()).fold(f64::NEG_INFINITY, f64::max);
        let min = if self.min.is_finite() { self.min.min(lo) } else { lo };
        let max = if self.max.is_finite() { self.max.max(hi) } else { hi };
        let count: f64 = centroids.iter().map(|c| c.weight()).sum();
        let sum: f64 = centroids.iter().map(|c| c.mean() * c.weight()).sum();
        tdigest::TDigest::new(centroids, sum, count, Some(max), Some(min), MERGE_COMPRESSION)
    }
}
