//! Ids by series, without a copy of the series: the series catalog and the
//! metadata index keep every series once (by id) and find a series' id
//! through this table, which holds only each series' hash and id and
//! compares candidates with the series kept by id. A `HashMap<Series, Id>`
//! next to the list by id held every series twice: at 100,000 series
//! about 50 MB per store.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use heroic_plugin_api::types::Series;

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

impl<I: Copy + Eq> SeriesTable<I> {
    fn hash(&self, s: &Series) -> u64 {
        self.state.hash_one(s)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The id of `s`; `series_of` gives the series of an id in the table.
    pub(crate) fn get<'a>(&self, s: &Series, series_of: impl Fn(I) -> Option<&'a Series>) -> Option<I> {
        let hash = self.hash(s);
        self.table.find(hash, |&(h, id)| h == hash && series_of(id).is_some_and(|x| x == s)).map(|&(_, id)| id)
    }

    /// Adds `s` with `id`; the caller has checked that `s` is not there.
    pub(crate) fn insert(&mut self, s: &Series, id: I) {
        let hash = self.hash(s);
        self.table.insert_unique(hash, (hash, id), |&(h, _)| h);
    }

    /// Removes `s`, returning its id.
    pub(crate) fn remove<'a>(&mut self, s: &Series, series_of: impl Fn(I) -> Option<&'a Series>) -> Option<I> {
        let hash = self.hash(s);
        let entry = self.table.find_entry(hash, |&(h, id)| h == hash && series_of(id).is_some_and(|x| x == s)).ok()?;
        Some(entry.remove().0 .1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inserts_and_removes_through_the_series_kept_by_id() {
        let kept: Vec<Series> = (0..1000).map(|i| Series::new(format!("k{i}"), [("i", i.to_string())], [])).collect();
        let mut t = SeriesTable::<u32>::default();
        let by_id = |id: u32| kept.get(id as usize);
        for (i, s) in kept.iter().enumerate() {
            assert_eq!(t.get(s, by_id), None);
            t.insert(s, i as u32);
        }
        assert_eq!(t.len(), 1000);
        for (i, s) in kept.iter().enumerate() {
            assert_eq!(t.get(s, by_id), Some(i as u32));
        }
        assert_eq!(t.get(&Series::new("k1", [("i", "2")], []), by_id), None);
        assert_eq!(t.remove(&kept[7], by_id), Some(7));
        assert_eq!(t.remove(&kept[7], by_id), None);
        assert_eq!(t.get(&kept[7], by_id), None);
        assert_eq!(t.get(&kept[8], by_id), Some(8));
        assert_eq!(t.len(), 999);
    }
}
