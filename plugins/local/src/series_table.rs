//! Ids by series, without a copy of the series: the series catalog and the
//! metadata index keep every series once (by id) and find a series' id
//! through this table, which holds only each series' hash and id and
//! compares candidates with the series kept by id. A `HashMap<Series, Id>`
//! next to the list by id held every series twice: at 100,000 series
//! about 50 MB per store.
//!
//! The key is whatever form the store keeps its series in (a [`Series`]
//! in the metadata index, its canonical bytes in the catalog); the caller
//! says how to compare a candidate entry with it. An entry is the id
//! (the metadata index) or the id with the series' bytes (the catalog:
//! the bytes are then read with the entry, not found through the id).
//!
//! [`Series`]: heroic_plugin_api::types::Series

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

pub(crate) struct SeriesTable<I> {
    /// `(hash of the series, id)`; the hash is kept so that growing the
    /// table needs no series.
    table: HashTable<(u64, I)>,
    /// Seeded per process, so that crafted series cannot collide on purpose.
    state: foldhash::fast::RandomState,
}

impl<I> Default for SeriesTable<I> {
    fn default() -> Self {
        SeriesTable { table: HashTable::new(), state: foldhash::fast::RandomState::default() }
    }
}

impl<I> SeriesTable<I> {
    /// The hash `key` is kept under.
    pub(crate) fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.state.hash_one(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The entry of `key`; `is(entry)` tells whether the series kept for
    /// that entry is the one asked for.
    pub(crate) fn get<K: Hash + ?Sized>(&self, key: &K, is: impl Fn(&I) -> bool) -> Option<&I> {
        self.get_hashed(self.hash(key), is)
    }

    /// [`get`](Self::get) by the key's [`hash`](Self::hash).
    pub(crate) fn get_hashed(&self, hash: u64, is: impl Fn(&I) -> bool) -> Option<&I> {
        self.table.find(hash, |(h, e)| *h == hash && is(e)).map(|(_, e)| e)
    }

    /// Adds `key` with `entry`; the caller has checked that `key` is not
    /// there.
    pub(crate) fn insert<K: Hash + ?Sized>(&mut self, key: &K, entry: I) {
        self.insert_hashed(self.hash(key), entry);
    }

    /// [`insert`](Self::insert) by the key's [`hash`](Self::hash).
    pub(crate) fn insert_hashed(&mut self, hash: u64, entry: I) {
        self.table.insert_unique(hash, (hash, entry), |(h, _)| *h);
    }

    /// Removes the entry under `hash` that `is` accepts, returning it.
    pub(crate) fn remove_hashed(&mut self, hash: u64, is: impl Fn(&I) -> bool) -> Option<I> {
        let entry = self.table.find_entry(hash, |(h, e)| *h == hash && is(e)).ok()?;
        Some(entry.remove().0 .1)
    }

    /// Removes `key`, returning its entry.
    pub(crate) fn remove<K: Hash + ?Sized>(&mut self, key: &K, is: impl Fn(&I) -> bool) -> Option<I> {
        self.remove_hashed(self.hash(key), is)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heroic_plugin_api::types::Series;

    /// Whether the series kept as `id` is `s`.
    fn is<'a>(kept: &'a [Series], s: &'a Series) -> impl Fn(&u32) -> bool + 'a {
        move |&id| kept.get(id as usize) == Some(s)
    }

    #[test]
    fn finds_inserts_and_removes_through_the_series_kept_by_id() {
        let kept: Vec<Series> = (0..1000).map(|i| Series::new(format!("k{i}"), [("i", i.to_string())], [])).collect();
        let mut t = SeriesTable::<u32>::default();
        for (i, s) in kept.iter().enumerate() {
            assert_eq!(t.get(s, is(&kept, s)), None);
            t.insert(s, i as u32);
        }
        assert_eq!(t.len(), 1000);
        for (i, s) in kept.iter().enumerate() {
            assert_eq!(t.get(s, is(&kept, s)), Some(&(i as u32)));
        }
        let absent = Series::new("k1", [("i", "2")], []);
        assert_eq!(t.get(&absent, is(&kept, &absent)), None);
        assert_eq!(t.remove(&kept[7], is(&kept, &kept[7])), Some(7));
        assert_eq!(t.remove(&kept[7], is(&kept, &kept[7])), None);
        assert_eq!(t.get(&kept[7], is(&kept, &kept[7])), None);
        assert_eq!(t.get(&kept[8], is(&kept, &kept[8])), Some(&8));
        assert_eq!(t.len(), 999);
    }
}
