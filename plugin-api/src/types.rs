//! Plain data that crosses the plugin boundary.
//!
//! Every type here is `#[repr(C)]` and derives `StableAbi`, so abi_stable can
//! check at load time that host and plugin agree on its layout. Bulk data is
//! columnar (`PointBatch`): a whole batch moves across in O(1), never point by
//! point.

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;

/// One tag (or resource tag): a key and its value.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    pub key: RString,
    pub value: RString,
}

impl Tag {
    pub fn new(key: impl Into<RString>, value: impl Into<RString>) -> Self {
        Tag { key: key.into(), value: value.into() }
    }
}

/// A time series: a key, tags (indexed, usable in filters) and resource tags
/// (not indexed; usable only to group results).
///
/// Invariant: `tags` and `resource` are sorted by key and keys are unique.
/// Use [`Series::new`] or [`Series::normalize`] to keep it.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    pub key: RString,
    pub tags: RVec<Tag>,
    pub resource: RVec<Tag>,
}

impl Series {
    /// Builds a series from any iterable of pairs, sorting and de-duplicating
    /// tags (the last value given for a key wins).
    pub fn new<K, V>(
        key: impl Into<RString>,
        tags: impl IntoIterator<Item = (K, V)>,
        resource: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<RString>,
        V: Into<RString>,
    {
        let mut series = Series {
            key: key.into(),
            tags: tags.into_iter().map(|(k, v)| Tag::new(k, v)).collect(),
            resource: resource.into_iter().map(|(k, v)| Tag::new(k, v)).collect(),
        };
        series.normalize();
        series
    }

    /// A series with a key and no tags.
    pub fn key_only(key: impl Into<RString>) -> Self {
        Series { key: key.into(), tags: RVec::new(), resource: RVec::new() }
    }

    /// Sorts tags and resource tags by key; for a repeated key the last value wins.
    pub fn normalize(&mut self) {
        normalize_tags(&mut self.tags);
        normalize_tags(&mut self.resource);
    }

    /// The value of tag `key`, if the series has it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        find_tag(&self.tags, key)
    }

    /// The value of resource tag `key`, if the series has it.
    pub fn resource_tag(&self, key: &str) -> Option<&str> {
        find_tag(&self.resource, key)
    }
}

fn find_tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.binary_search_by(|t| t.key.as_str().cmp(key)).ok().map(|i| tags[i].value.as_str())
}

fn normalize_tags(tags: &mut RVec<Tag>) {
    // A stable sort keeps the input order among equal keys, so keeping the
    // last of each run means "the last value given wins".
    let mut v: Vec<Tag> = std::mem::take(tags).into_vec();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: Vec<Tag> = Vec::with_capacity(v.len());
    for tag in v {
        match out.last_mut() {
            Some(last) if last.key == tag.key => *last = tag,
            _ => out.push(tag),
        }
    }
    *tags = out.into();
}

/// A columnar batch of points: `timestamps[i]` (milliseconds since the Unix
/// epoch) goes with `values[i]`. Both vectors always have the same length.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct PointBatch {
    pub timestamps: RVec<i64>,
    pub values: RVec<f64>,
}

impl PointBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        PointBatch { timestamps: RVec::with_capacity(n), values: RVec::with_capacity(n) }
    }

    pub fn from_pairs(pairs: &[(i64, f64)]) -> Self {
        let mut batch = Self::with_capacity(pairs.len());
        for &(t, v) in pairs {
            batch.push(t, v);
        }
        batch
    }

    pub fn push(&mut self, timestamp: i64, value: f64) {
        self.timestamps.push(timestamp);
        self.values.push(value);
    }

    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The points as `(timestamp, value)` pairs, for tests and small data.
    pub fn to_pairs(&self) -> Vec<(i64, f64)> {
        self.timestamps.iter().copied().zip(self.values.iter().copied()).collect()
    }

    /// Whether timestamps are strictly increasing (sorted, no duplicates).
    pub fn is_strictly_sorted(&self) -> bool {
        self.timestamps.windows(2).all(|w| w[0] < w[1])
    }

    /// Sorts by timestamp; for a repeated timestamp the last value written wins.
    pub fn sort_dedup(&mut self) {
        if self.is_strictly_sorted() {
            return;
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by_key(|&i| self.timestamps[i]); // stable: later writes stay later
        let mut out = PointBatch::with_capacity(idx.len());
        for i in idx {
            let (t, v) = (self.timestamps[i], self.values[i]);
            if out.timestamps.last() == Some(&t) {
                *out.values.last_mut().expect("same length") = v;
            } else {
                out.push(t, v);
            }
        }
        *self = out;
    }
}

/// A time range with Heroic's semantics: `start` is excluded, `end` included,
/// i.e. `(start, end]`, in milliseconds.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange { start: i64::MIN, end: i64::MAX };

    pub fn new(start: i64, end: i64) -> Self {
        TimeRange { start, end }
    }

    /// Whether `(start, end]` holds `timestamp`.
    pub fn contains(&self, timestamp: i64) -> bool {
        timestamp > self.start && timestamp <= self.end
    }
}

/// A series with points to write, or points read back.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct SeriesPoints {
    pub series: Series,
    pub points: PointBatch,
}

/// What a metric backend is asked to read.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FetchRequest {
    /// The series to read, as the metadata backend returned them.
    pub series: RVec<Series>,
    /// Points with a timestamp in `(start, end]`.
    pub range: TimeRange,
    /// Stop after about this many points in total (0: no limit). A backend
    /// that stops early sets `FetchResponse::limited`.
    pub point_limit: u64,
}

/// One series read back: `request_index` points into `FetchRequest::series`.
/// A backend that stores resource variants of a series separately (Bigtable)
/// returns one entry per variant, each with its resource tags.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct FetchedSeries {
    pub request_index: u32,
    pub resource: RVec<Tag>,
    /// Sorted by timestamp, no duplicate timestamps.
    pub points: PointBatch,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct FetchResponse {
    pub series: RVec<FetchedSeries>,
    /// True when `point_limit` stopped the read early.
    pub limited: bool,
}

/// A page of series keys stored in a metric backend (the shell's `keys` task).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct SeriesListPage {
    pub series: RVec<Series>,
    /// Pass back to get the next page; `RNone` when this was the last one.
    pub next_cursor: ROption<RString>,
}

/// One named figure a backend reports about itself (`GET /status`, the
/// shell's `statistics` task).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Statistic {
    pub name: RString,
    pub value: f64,
}

/// Health of a backend or consumer.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Health {
    /// Working as it should.
    pub ok: bool,
    /// Ready to serve (started, connected).
    pub ready: bool,
    /// Why not, when not ok or not ready.
    pub message: RString,
}

impl Health {
    pub fn healthy() -> Self {
        Health { ok: true, ready: true, message: RString::new() }
    }

    pub fn unhealthy(message: impl Into<RString>) -> Self {
        Health { ok: false, ready: false, message: message.into() }
    }
}

/// A metadata or suggest query: a filter, a time range (backends with
/// rotating indices use it to pick indices; it is not a filter on series)
/// and a limit (0: no limit).
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct MetadataQuery {
    pub filter: FfiFilter,
    pub range: TimeRange,
    pub limit: u64,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct SeriesPage {
    pub series: RVec<Series>,
    /// True when more series matched than `limit`.
    pub limited: bool,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct CountResult {
    pub count: u64,
    pub limited: bool,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct DeleteResult {
    pub deleted: u64,
    pub failed: u64,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct KeysPage {
    pub keys: RVec<RString>,
    pub limited: bool,
}

/// Tag key with its values.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct TagValues {
    pub key: RString,
    pub values: RVec<RString>,
    /// True when more values exist than were returned.
    pub limited: bool,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct TagsPage {
    pub tags: RVec<TagValues>,
    pub limited: bool,
}

/// Declares the bit-set types of capabilities. Each is a `u64` with named
/// bits rather than a struct of booleans so that a later interface version
/// can add capabilities without changing the layout: a bit an older plugin
/// does not know is simply not set, which must always mean "not declared".
macro_rules! capability_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$bit_meta:meta])* $bit:ident = $value:expr, $label:literal;)* }) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            $($(#[$bit_meta])* pub const $bit: $name = $name($value);)*

            /// Nothing declared.
            pub const NONE: $name = $name(0);

            /// Whether every bit of `other` is set.
            pub fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// The names of the bits set that this version knows.
            pub fn names(self) -> Vec<&'static str> {
                [$(($name::$bit, $label)),*]
                    .into_iter()
                    .filter(|(bit, _)| self.contains(*bit))
                    .map(|(_, name)| name)
                    .collect()
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.names())
            }
        }
    };
}

capability_set! {
    /// What a metadata backend can do beyond the required operations. The
    /// host finishes whatever a backend cannot do (for example regex
    /// filters) on the candidates it returns; the conformance kit accepts
    /// `Unsupported` only for operations left undeclared.
    MetadataCapabilities {
        /// Evaluates regex filters itself (otherwise it is given a relaxed
        /// filter and the host applies the regex).
        REGEX = 1, "regex";
        /// Implements `delete_series`.
        DELETE_SERIES = 2, "delete_series";
    }
}

capability_set! {
    /// What a metric backend implements beyond `write` and `fetch`
    /// (interface 1.1; a 1.0 plugin is taken to declare
    /// [`MetricCapabilities::ASSUMED_FOR_1_0`]).
    MetricCapabilities {
        /// Implements `list_series` (the shell's `keys` task).
        LIST_SERIES = 1, "list_series";
        /// Implements `delete_points`.
        DELETE_POINTS = 2, "delete_points";
        /// Implements `count_points` (the SDK provides one from `fetch`).
        COUNT_POINTS = 4, "count_points";
        /// Stores distribution samples ([`crate::samples::SampleKind::DISTRIBUTION`])
        /// through `write_samples` and `fetch_samples` (interface 1.2).
        DISTRIBUTIONS = 8, "distributions";
        /// Stores spreads ([`crate::samples::SampleKind::SPREAD`]) through
        /// `write_samples` and `fetch_samples` (interface 1.2).
        SPREADS = 16, "spreads";
        /// Stores t-digest points ([`crate::samples::SampleKind::TDIGEST`])
        /// through `write_samples` and `fetch_samples` (interface 1.2).
        TDIGESTS = 32, "tdigests";
        /// Implements `fetch_buckets` (interface 1.3): folds points into
        /// per-bucket partials itself. The SDK provides one from `fetch`.
        FETCH_BUCKETS = 64, "fetch_buckets";
    }
}

impl MetricCapabilities {
    /// What the host assumes of a plugin built before capabilities existed:
    /// everything may work, and a call that does not answers `Unsupported`.
    pub const ASSUMED_FOR_1_0: MetricCapabilities =
        MetricCapabilities(Self::LIST_SERIES.0 | Self::DELETE_POINTS.0 | Self::COUNT_POINTS.0);
}

/// Key suggestion request (`/metadata/key-suggest`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct KeySuggestRequest {
    pub query: MetadataQuery,
    /// What the user typed so far; `RNone` suggests any key.
    pub key: ROption<RString>,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct KeySuggestion {
    pub score: f64,
    pub key: RString,
}

/// Tag suggestion request (`/metadata/tag-suggest`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct TagSuggestRequest {
    pub query: MetadataQuery,
    pub key: ROption<RString>,
    pub value: ROption<RString>,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct TagSuggestion {
    pub score: f64,
    pub key: RString,
    pub value: RString,
}

/// Values of one tag key (`/metadata/tag-value-suggest`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct TagValueSuggestRequest {
    pub query: MetadataQuery,
    pub key: RString,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct TagValueSuggestion {
    pub values: RVec<RString>,
    pub limited: bool,
}

/// Values of every tag key (`/metadata/tag-values-suggest`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct TagValuesSuggestRequest {
    pub query: MetadataQuery,
    /// Tag keys left out of the answer.
    pub exclude: RVec<RString>,
    /// Values returned per key at most.
    pub group_limit: u64,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct TagValuesSuggestion {
    pub tags: RVec<TagValues>,
    pub limited: bool,
}

/// Tag keys with their number of distinct values (`/metadata/tagkey-count`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct TagKeyCountRequest {
    pub query: MetadataQuery,
    /// List the values themselves for keys with at most this many values.
    pub exact_limit: u64,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct TagKeyCount {
    pub key: RString,
    pub count: u64,
    pub exact_values: ROption<RVec<RString>>,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct TagKeyCountResult {
    pub suggestions: RVec<TagKeyCount>,
    pub limited: bool,
}

/// One raw message taken from a queue, handed to the host to decode.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct RawMessage {
    pub payload: RVec<u8>,
}

/// What the host did with a batch of raw messages. When the host answers
/// `Ok`, every valid message of the batch is durable in every backend the
/// node writes to, so the consumer may acknowledge the whole batch.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Messages decoded and written.
    pub written: u64,
    /// Messages that did not decode or validate (counted, logged, skipped).
    pub invalid: u64,
    /// Messages dropped by the node's ingestion filter.
    pub filtered: u64,
}

/// Operator of one node of the stable filter ([`FfiFilter`]). A number
/// with named values, so that a later interface version can add operators;
/// a plugin meeting one it does not know refuses the filter.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterOp(pub u8);

impl FilterOp {
    pub const TRUE: FilterOp = FilterOp(0);
    pub const FALSE: FilterOp = FilterOp(1);
    pub const AND: FilterOp = FilterOp(2);
    pub const OR: FilterOp = FilterOp(3);
    pub const NOT: FilterOp = FilterOp(4);
    pub const KEY: FilterOp = FilterOp(5);
    pub const MATCH_TAG: FilterOp = FilterOp(6);
    pub const HAS_TAG: FilterOp = FilterOp(7);
    pub const STARTS_WITH: FilterOp = FilterOp(8);
    pub const REGEX: FilterOp = FilterOp(9);
}

/// One node of [`FfiFilter`]. `key` and `value` are empty where the operator
/// takes none; `children` index into `FfiFilter::nodes`.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct FilterNode {
    pub op: FilterOp,
    pub key: RString,
    pub value: RString,
    pub children: RVec<u32>,
}

/// The stable, flat form of a series filter ([`crate::filter::Filter`]
/// converts to and from it): the root is `nodes[0]`. A flat list has a
/// fixed layout that abi_stable can check, where a recursive enum would not.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct FfiFilter {
    pub nodes: RVec<FilterNode>,
}
