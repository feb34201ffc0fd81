//! Aggregation output: result groups, their values and Heroic's group hash.

use std::collections::BTreeMap;

use heroic_plugin_api::types::{Series, Tag};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

/// A group key (or shard): tag name → value, sorted.
pub type GroupKey = BTreeMap<String, String>;

/// The key groups are made from: the series' tags and resource tags
/// (resource wins on a clash).
pub fn series_key(series: &Series) -> GroupKey {
    let mut key: GroupKey = series.tags.iter().map(|t| (t.key.to_string(), t.value.to_string())).collect();
    for t in series.resource.iter() {
        key.insert(t.key.to_string(), t.value.to_string());
    }
    key
}

/// The value of tag `key` in [`series_key`]`(series)`, without building
/// it: the resource tag's value when there is one (resource wins on a
/// clash), else the tag's.
pub fn tag_value<'a>(series: &'a Series, key: &str) -> Option<&'a str> {
    let find = |tags: &'a [Tag]| tags.iter().rev().find(|t| t.key == key).map(|t| t.value.as_str());
    find(&series.resource).or_else(|| find(&series.tags))
}

/// A spread: summary statistics of the values in a bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpreadValue {
    pub count: u64,
    pub sum: f64,
    pub sum2: f64,
    pub min: f64,
    pub max: f64,
}

impl SpreadValue {
    pub const EMPTY: SpreadValue =
        SpreadValue { count: 0, sum: 0.0, sum2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };

    #[inline]
    pub fn add_point(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.sum2 += v * v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, o: &SpreadValue) {
        self.count += o.count;
        self.sum += o.sum;
        self.sum2 += o.sum2;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// The values of a group: Heroic's `points`, `spreads` or `groups` collection.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValues {
    Points(Vec<(i64, f64)>),
    Spreads(Vec<(i64, SpreadValue)>),
    /// `group-unique`'s output: per bucket, the collections of the distinct
    /// samples that fell in it.
    Groups(Vec<(i64, Vec<MetricValues>)>),
    /// Raw `distributionPoints`: per timestamp, the serialised t-digest as
    /// stored (see [`crate::distribution`]).
    Distributions(Vec<(i64, Vec<u8>)>),
    /// Raw `tdigestPoints`: the same, for the t-digest points kind.
    TdigestPoints(Vec<(i64, Vec<u8>)>),
}

impl MetricValues {
    /// The collection type (`"points"`, `"spreads"` or `"groups"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            MetricValues::Points(_) => "points",
            MetricValues::Spreads(_) => "spreads",
            MetricValues::Groups(_) => "groups",
            MetricValues::Distributions(_) => "distributionPoints",
            MetricValues::TdigestPoints(_) => "tdigestPoints",
        }
    }

    /// Number of entries (a group counts with the samples it holds, for
    /// the node's retained-data budget).
    pub fn len(&self) -> usize {
        match self {
            MetricValues::Points(p) => p.len(),
            MetricValues::Spreads(s) => s.len(),
            MetricValues::Groups(g) => g.iter().map(|(_, c)| 1 + c.iter().map(MetricValues::len).sum::<usize>()).sum(),
            MetricValues::Distributions(d) | MetricValues::TdigestPoints(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heroic's `values` array as a JSON value (see the `Serialize` impl,
    /// which writes the same without building a value per point).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A finite number, or `null` (JSON has no NaN or infinity).
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_none()
        }
    }
}

impl Serialize for SpreadValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("Spread", 5)?;
        m.serialize_field("count", &self.count)?;
        m.serialize_field("sum", &Num(self.sum))?;
        m.serialize_field("sum2", &Num(self.sum2))?;
        m.serialize_field("min", &Num(self.min))?;
        m.serialize_field("max", &Num(self.max))?;
        m.end()
    }
}

/// Heroic's `values` array: `[[t, v]]` (non-finite `v` as `null`),
/// `[[t, {count,sum,sum2,min,max}]]` or `[[t, [{"type", "data"}…]]]`,
/// written point by point straight into the output: a response of millions
/// of points allocates nothing per point.
impl Serialize for MetricValues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetricValues::Points(p) => s.collect_seq(p.iter().map(|&(t, v)| (t, Num(v)))),
            MetricValues::Spreads(sp) => s.collect_seq(sp.iter().map(|(t, v)| (t, v))),
            MetricValues::Groups(g) => {
                s.collect_seq(g.iter().map(|(t, c)| (t, c.iter().map(Collection).collect::<Vec<_>>())))
            }
            MetricValues::Distributions(d) | MetricValues::TdigestPoints(d) => {
                s.collect_seq(d.iter().map(|(t, v)| DistributionJson(*t, v)))
            }
        }
    }
}

/// A distribution or t-digest point as Heroic writes it:
/// `{"value": "<base64 bytes>", "timestamp": t}`.
struct DistributionJson<'a>(i64, &'a [u8]);

impl Serialize for DistributionJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        let mut m = s.serialize_struct("DistributionPoint", 2)?;
        m.serialize_field("value", &base64::engine::general_purpose::STANDARD.encode(self.1))?;
        m.serialize_field("timestamp", &self.0)?;
        m.end()
    }
}

/// A `MetricCollection` inside a group: `{"type": "points", "data": […]}`.
struct Collection<'a>(&'a MetricValues);

impl Serialize for Collection<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("MetricCollection", 2)?;
        m.serialize_field("type", self.0.type_name())?;
        m.serialize_field("data", self.0)?;
        m.end()
    }
}

/// One group of an aggregation's result.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultGroup {
    /// The group key (tags, or resource tags, the group is keyed on).
    pub key: GroupKey,
    /// The series that fed the group, sorted (with the resource tags they were read with).
    pub series: Vec<Series>,
    /// Milliseconds between values (bucket size); 0 for raw data, -1 when irregular.
    pub cadence: i64,
    pub values: MetricValues,
}

/// What the series of a group have in common (`key`, `tags`, `tagCounts`,
/// `resource`, `resourceCounts` of a response group).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SeriesSummary {
    /// The key if every series has the same one.
    pub key: Option<String>,
    /// Tags with exactly one value across the series.
    pub tags: GroupKey,
    /// Number of distinct values of tags with more than one.
    pub tag_counts: BTreeMap<String, u64>,
    pub resource: GroupKey,
    pub resource_counts: BTreeMap<String, u64>,
}

/// Every value of each tag key over a group's series, borrowed from them.
/// Hashed (foldhash): a group may hold 100,000 series, and the summary and
/// the response's common tags both read this.
pub type TagValueSets<'a> = foldhash::HashMap<&'a str, foldhash::HashSet<&'a str>>;

fn tag_value_sets<'a>(lists: impl Iterator<Item = &'a [Tag]>) -> TagValueSets<'a> {
    let mut values = TagValueSets::default();
    for list in lists {
        for t in list {
            values.entry(t.key.as_str()).or_default().insert(t.value.as_str());
        }
    }
    values
}

fn summarize(values: &TagValueSets<'_>) -> (GroupKey, BTreeMap<String, u64>) {
    let (mut single, mut counts) = (GroupKey::new(), BTreeMap::new());
    for (k, vs) in values {
        match (vs.len(), vs.iter().next()) {
            (1, Some(v)) => {
                single.insert(k.to_string(), v.to_string());
            }
            (n, _) => {
                counts.insert(k.to_string(), n as u64);
            }
        }
    }
    (single, counts)
}

impl ResultGroup {
    /// Heroic's group `hash` for this group on `shard` (empty for no shard).
    pub fn hash(&self, shard: &GroupKey) -> String {
        group_hash(shard, &self.key)
    }

    /// Every value of each tag (resource tag with `resource`) over the
    /// series that fed the group.
    pub fn tag_values(&self, resource: bool) -> TagValueSets<'_> {
        tag_value_sets(self.series.iter().map(|s| if resource { &s.resource[..] } else { &s.tags[..] }))
    }

    /// Key, tags and tag counts of the series that fed the group.
    pub fn summary(&self) -> SeriesSummary {
        self.summary_of(&self.tag_values(false), &self.tag_values(true))
    }

    /// [`summary`](Self::summary) from the group's [`tag_values`](Self::tag_values)
    /// of tags and of resource tags, when the caller has them already.
    pub fn summary_of(&self, tags: &TagValueSets<'_>, resource: &TagValueSets<'_>) -> SeriesSummary {
        let first = self.series.first().map(|s| s.key.as_str());
        let one_key = first.filter(|k| self.series.iter().all(|s| s.key == *k));
        let (tags, tag_counts) = summarize(tags);
        let (resource, resource_counts) = summarize(resource);
        SeriesSummary { key: one_key.map(str::to_string), tags, tag_counts, resource, resource_counts }
    }
}

/// murmur3_32 (x86, seed 0) over shard entries then group-key entries, each
/// string preceded by an int 0, with an int 0 between shard and key, as
/// lowercase hex without leading zeros (Java `Integer.toHexString`).
/// Entries are taken in sorted order.
pub fn group_hash(shard: &GroupKey, key: &GroupKey) -> String {
    let mut bytes = Vec::new();
    let sep = 0i32.to_le_bytes();
    let put = |map: &GroupKey, bytes: &mut Vec<u8>| {
        for (k, v) in map {
            bytes.extend_from_slice(&sep);
            bytes.extend_from_slice(k.as_bytes());
            bytes.extend_from_slice(&sep);
            bytes.extend_from_slice(v.as_bytes());
        }
    };
    put(shard, &mut bytes);
    bytes.extend_from_slice(&sep);
    put(key, &mut bytes);
    format!("{:x}", murmur3_32(&bytes, 0))
}

/// MurmurHash3 x86 32-bit.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// One output of a node: a group key, the series behind it, and values.
pub(crate) struct Output {
    pub key: GroupKey,
    pub series: Vec<Series>,
    pub values: MetricValues,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_reference_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
    }

    #[test]
    fn group_hash_is_stable_and_distinguishes_keys() {
        let empty = GroupKey::new();
        let a: GroupKey = [("site".to_string(), "lon".to_string())].into();
        let b: GroupKey = [("site".to_string(), "sto".to_string())].into();
        // Empty shard and key: the bytes are a single int 0.
        assert_eq!(group_hash(&empty, &empty), format!("{:x}", murmur3_32(&[0, 0, 0, 0], 0)));
        assert_ne!(group_hash(&empty, &a), group_hash(&empty, &b));
        assert_ne!(group_hash(&a, &empty), group_hash(&empty, &a));
    }

    #[test]
    fn summary_splits_single_and_counted_tags() {
        let g = ResultGroup {
            key: GroupKey::new(),
            series: vec![
                Series::new("cpu", [("host", "a"), ("site", "lon")], [("pod", "p1")]),
                Series::new("cpu", [("host", "b"), ("site", "lon")], [("pod", "p1")]),
            ],
            cadence: 10,
            values: MetricValues::Points(vec![]),
        };
        let s = g.summary();
        assert_eq!(s.key.as_deref(), Some("cpu"));
        assert_eq!(s.tags.get("site").map(String::as_str), Some("lon"));
        assert_eq!(s.tag_counts.get("host"), Some(&2));
        assert_eq!(s.resource.get("pod").map(String::as_str), Some("p1"));
    }
}
