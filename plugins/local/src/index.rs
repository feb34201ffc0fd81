//! The in-memory series registry and its inverted index: key → series,
//! tag key → series, tag key → value → series. Posting lists are sorted
//! vectors of series ids; ids only grow, so inserting is a push.
//!
//! A filter is evaluated to an exact set of ids from the posting lists
//! alone: `starts with` walks the sorted values from the prefix, a regex is
//! run once per distinct value of its tag (not per series), and `not` is a
//! complement against the live ids. No series is scanned. A posting list
//! is borrowed, not copied, until an operation makes a new one, and an
//! intersection of a short list with a long one searches the long one
//! instead of walking it: `key = X and instance = Y` costs the same with
//! 100,000 series of key X as with ten.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use heroic_plugin_api::filter::{compile_full_match, Filter};
use heroic_plugin_api::types::Series;

use crate::encoding::{key_and_tags, series_bytes, with_series_bytes, Reader};
use crate::error::Result;
use crate::series_table::SeriesTable;

/// The series a filter selects: every live series, or exactly these ids
/// (sorted, unique).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Set<'a> {
    All,
    Ids(Cow<'a, [u32]>),
}

impl Set<'_> {
    fn ids(ids: Vec<u32>) -> Self {
        Set::Ids(Cow::Owned(ids))
    }
}

#[derive(Default)]
pub(crate) struct Index {
    /// Each series by id, as its canonical bytes (`encoding::put_series`):
    /// one allocation a series instead of a dozen (at 100,000 series the
    /// registry's copy of them was ~40 MB), read back into a `Series` when
    /// a query asks for it.
    series: Vec<Option<Box<[u8]>>>,
    /// Ids by canonical bytes, through `series` (no second copy of each).
    ids: SeriesTable<u32>,
    keys: BTreeMap<String, Vec<u32>>,
    tag_keys: BTreeMap<String, Vec<u32>>,
    pub(crate) tags: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
}

fn remove_id(list: &mut Vec<u32>, id: u32) {
    if let Ok(i) = list.binary_search(&id) {
        list.remove(i);
    }
}

/// A series read back from the bytes it was encoded to here.
fn decode(bytes: &[u8]) -> Option<Series> {
    Reader::new(bytes).series()
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn id_of_bytes(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(bytes, |&id| self.bytes_of(id) == Some(bytes)).copied()
    }

    pub(crate) fn contains(&self, s: &Series) -> bool {
        with_series_bytes(s, |bytes| self.id_of_bytes(bytes).is_some())
    }

    /// Adds a series; false if it was there already.
    pub(crate) fn insert(&mut self, s: Series) -> bool {
        let bytes = series_bytes(&s);
        if self.id_of_bytes(&bytes).is_some() {
            return false;
        }
        let id = self.series.len() as u32;
        self.keys.entry(s.key.to_string()).or_default().push(id);
        for t in s.tags.iter() {
            self.tag_keys.entry(t.key.to_string()).or_default().push(id);
            self.tags.entry(t.key.to_string()).or_default().entry(t.value.to_string()).or_default().push(id);
        }
        self.ids.insert(&*bytes, id);
        self.series.push(Some(bytes));
        true
    }

    pub(crate) fn remove(&mut self, s: &Series) -> bool {
        let series = &self.series;
        let found = with_series_bytes(s, |bytes| {
            self.ids.remove(bytes, |&id| series.get(id as usize).and_then(Option::as_deref) == Some(bytes))
        });
        let Some(id) = found else {
            return false;
        };
        self.series[id as usize] = None;
        if let Some(list) = self.keys.get_mut(s.key.as_str()) {
            remove_id(list, id);
            if list.is_empty() {
                self.keys.remove(s.key.as_str());
            }
        }
        for t in s.tags.iter() {
            if let Some(list) = self.tag_keys.get_mut(t.key.as_str()) {
                remove_id(list, id);
                if list.is_empty() {
                    self.tag_keys.remove(t.key.as_str());
                }
            }
            if let Some(values) = self.tags.get_mut(t.key.as_str()) {
                if let Some(list) = values.get_mut(t.value.as_str()) {
                    remove_id(list, id);
                    if list.is_empty() {
                        values.remove(t.value.as_str());
                    }
                }
                if values.is_empty() {
                    self.tags.remove(t.key.as_str());
                }
            }
        }
        true
    }

    fn bytes_of(&self, id: u32) -> Option<&[u8]> {
        self.series.get(id as usize).and_then(Option::as_deref)
    }

    /// The canonical bytes of a set's series, in id (insertion) order.
    fn resolve_bytes<'a>(&'a self, set: &'a Set<'_>) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        match set {
            Set::All => Box::new(self.all_bytes()),
            Set::Ids(ids) => Box::new(ids.iter().filter_map(|&id| self.bytes_of(id))),
        }
    }

    /// The canonical bytes of every live series, in id order.
    pub(crate) fn all_bytes(&self) -> impl Iterator<Item = &[u8]> {
        self.series.iter().flatten().map(|b| &**b)
    }

    /// The series of a set, in id (insertion) order.
    pub(crate) fn resolve<'a>(&'a self, set: &'a Set<'_>) -> impl Iterator<Item = Series> + 'a {
        // The bytes were encoded here from a series, so they decode.
        self.resolve_bytes(set).filter_map(decode)
    }

    pub(crate) fn set_len(&self, set: &Set<'_>) -> usize {
        match set {
            Set::All => self.len(),
            Set::Ids(ids) => ids.len(),
        }
    }

    /// Distinct series keys of a set, sorted.
    pub(crate) fn keys_of<'a>(&'a self, set: &'a Set<'_>) -> BTreeSet<&'a str> {
        match set {
            Set::All => self.keys.keys().map(String::as_str).collect(),
            Set::Ids(_) => self.resolve_bytes(set).filter_map(|b| key_and_tags(b, |_, _| {})).collect(),
        }
    }

    /// Tag key → distinct values (sorted) of a set.
    pub(crate) fn tags_of<'a>(&'a self, set: &'a Set<'_>) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
        match set {
            Set::All => {
                self.tags.iter().map(|(k, values)| (k.as_str(), values.keys().map(String::as_str).collect())).collect()
            }
            Set::Ids(_) => {
                let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
                for b in self.resolve_bytes(set) {
                    key_and_tags(b, |k, v| {
                        out.entry(k).or_default().insert(v);
                    });
                }
                out
            }
        }
    }

    fn all_ids(&self) -> Vec<u32> {
        // Slots are in id order, so this is already sorted.
        self.series.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| i as u32).collect()
    }

    /// The exact set of series matching `filter`.
    pub(crate) fn eval(&self, filter: &Filter) -> Result<Set<'_>> {
        fn list(l: Option<&Vec<u32>>) -> Set<'_> {
            Set::Ids(Cow::Borrowed(l.map_or(&[][..], Vec::as_slice)))
        }
        Ok(match filter {
            Filter::True => Set::All,
            Filter::False => Set::ids(Vec::new()),
            Filter::Key(k) => list(self.keys.get(k)),
            Filter::HasTag(k) => list(self.tag_keys.get(k)),
            Filter::MatchTag { key, value } => list(self.tags.get(key).and_then(|v| v.get(value))),
            Filter::StartsWith { key, value } => {
                let lists = self.tags.get(key).into_iter().flat_map(|values| {
                    values
                        .range::<str, _>((std::ops::Bound::Included(value.as_str()), std::ops::Bound::Unbounded))
                        .take_while(|(v, _)| v.starts_with(value.as_str()))
                        .map(|(_, ids)| ids.as_slice())
                });
                Set::ids(union(lists))
            }
            Filter::Regex { key, pattern } => {
                let re = compile_full_match(key, pattern)?;
                let lists =
                    self.tags.get(key).into_iter().flat_map(|values| {
                        values.iter().filter(|(v, _)| re.is_match(v)).map(|(_, ids)| ids.as_slice())
                    });
                Set::ids(union(lists))
            }
            Filter::And(children) => {
                let mut sets = Vec::new();
                for c in children {
                    match self.eval(c)? {
                        Set::All => {}
                        Set::Ids(ids) if ids.is_empty() => return Ok(Set::Ids(ids)),
                        Set::Ids(ids) => sets.push(ids),
                    }
                }
                sets.sort_by_key(|s| s.len());
                let mut it = sets.into_iter();
                match it.next() {
                    None => Set::All,
                    Some(first) => Set::Ids(it.fold(first, |acc, s| Cow::Owned(intersect(&acc, &s)))),
                }
            }
            Filter::Or(children) => {
                let mut sets = Vec::new();
                for c in children {
                    match self.eval(c)? {
                        Set::All => return Ok(Set::All),
                        Set::Ids(ids) => sets.push(ids),
                    }
                }
                Set::ids(union(sets.iter().map(|s| &s[..])))
            }
            Filter::Not(inner) => match self.eval(inner)? {
                Set::All => Set::ids(Vec::new()),
                Set::Ids(ids) => Set::ids(difference(&self.all_ids(), &ids)),
            },
        })
    }
}

fn union<'a>(lists: impl Iterator<Item = &'a [u32]>) -> Vec<u32> {
    let mut out: Vec<u32> = lists.flatten().copied().collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The ids in both sorted lists. With one list much shorter than the
/// other, each of its ids is searched for (galloping forward) instead of
/// walking both.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(short.len());
    if short.len().saturating_mul(16) < long.len() {
        let mut rest = long;
        for &id in short {
            // Gallop to a window that holds `id`, then search it.
            let mut step = 1;
            while step < rest.len() && rest[step] < id {
                step *= 2;
            }
            let window = &rest[..rest.len().min(step + 1)];
            let at = window.partition_point(|&x| x < id);
            rest = &rest[at..];
            if rest.first() == Some(&id) {
                out.push(id);
                rest = &rest[1..];
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn difference(all: &[u32], minus: &[u32]) -> Vec<u32> {
    all.iter().copied().filter(|id| minus.binary_search(id).is_err()).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sorted(mut v: Vec<u32>) -> Vec<u32> {
        v.sort_unstable();
        v.dedup();
        v
    }

    proptest! {
        /// Both ways of intersecting (walking, and searching the longer
        /// list) agree with a plain set intersection, at every skew.
        #[test]
        fn intersect_matches_a_set_intersection(
            a in proptest::collection::vec(0u32..5_000, 0..40),
            b in proptest::collection::vec(0u32..5_000, 0..3_000),
        ) {
            let (a, b) = (sorted(a), sorted(b));
            let want: Vec<u32> = a.iter().copied().filter(|x| b.binary_search(x).is_ok()).collect();
            prop_assert_eq!(intersect(&a, &b), want.clone());
            prop_assert_eq!(intersect(&b, &a), want);
        }
    }

    #[test]
    fn a_filter_on_a_common_key_and_a_rare_tag_borrows_and_intersects() {
        let mut index = Index::default();
        for i in 0..1_000 {
            index.insert(Series::new("cpu", [("instance", format!("i-{i}").as_str())], []));
        }
        let f = Filter::And(vec![Filter::Key("cpu".into()), Filter::match_tag("instance", "i-500")]);
        assert_eq!(index.eval(&f).unwrap(), Set::ids(vec![500]));
        assert!(
            matches!(index.eval(&Filter::Key("cpu".into())).unwrap(), Set::Ids(Cow::Borrowed(ids)) if ids.len() == 1_000)
        );
    }

    #[test]
    fn series_come_back_whole_from_their_bytes_and_leave_no_trace_when_removed() {
        let mut index = Index::default();
        let a = Series::new("cpu", [("host", "a"), ("role", "db")], [("pod", "p1")]);
        let b = Series::new("mem", [("host", "b")], []);
        assert!(index.insert(a.clone()) && index.insert(b.clone()) && !index.insert(a.clone()));
        assert!(index.contains(&a) && index.contains(&b));
        assert!(!index.contains(&Series::new("cpu", [("host", "a"), ("role", "db")], [])));
        let all: Vec<Series> = index.resolve(&Set::All).collect();
        assert_eq!(all, [a.clone(), b.clone()]);
        let db = index.eval(&Filter::match_tag("role", "db")).unwrap();
        assert_eq!(index.resolve(&db).collect::<Vec<_>>(), std::slice::from_ref(&a));
        let hosts = index.eval(&Filter::HasTag("host".into())).unwrap();
        assert_eq!(index.keys_of(&hosts), BTreeSet::from(["cpu", "mem"]));
        let tags = index.tags_of(&hosts);
        assert_eq!(tags["host"], BTreeSet::from(["a", "b"]));
        assert_eq!(tags["role"], BTreeSet::from(["db"]));
        assert!(!tags.contains_key("pod"), "resource tags are not tags");

        assert!(index.remove(&a) && !index.remove(&a));
        assert!(!index.contains(&a));
        assert_eq!(index.len(), 1);
        assert_eq!(index.resolve(&Set::All).collect::<Vec<_>>(), std::slice::from_ref(&b));
        assert_eq!(index.eval(&Filter::match_tag("role", "db")).unwrap(), Set::ids(vec![]));
        assert_eq!(index.all_bytes().count(), 1);
    }
}
