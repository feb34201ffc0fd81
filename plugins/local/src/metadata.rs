//! The metadata store: a durable registry of series with an inverted tag
//! index (see `index.rs`).
//!
//! Durability: `registry.log` is a record log (see `log.rs`) of `add` and
//! `remove` records, each an encoded series. A write or delete returns once
//! its records are fsynced (group commit); writing a series that is already
//! known costs no I/O. Older records are kept compressed (see
//! `compacted.rs`). At open the log is replayed; when removes make up most
//! of it, it is rewritten as a snapshot of the live series.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use heroic_plugin_api::abi_stable::std_types::RString;
use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::types::{CountResult, DeleteResult, KeysPage, Series, SeriesPage, TagValues, TagsPage};
use parking_lot::{Mutex, RwLock};

use crate::compacted::CompactedLog;
use crate::dir_lock::DirLock;
use crate::encoding::{put_series, Reader};
use crate::error::{IoContext, Result};
use crate::index::Index;
use crate::log::Leader;

const REC_ADD: u8 = 1;
const REC_REMOVE: u8 = 2;

pub struct MetadataStore {
    path: PathBuf,
    log: CompactedLog,
    pub(crate) index: RwLock<Index>,
    /// Held while the store is open; dropping the store unlocks.
    _dir_lock: DirLock,
}

/// Decodes a registry record: `(true, series)` for an add, `(false,
/// series)` for a removal; `None` when it does not decode.
pub(crate) fn parse_registry_record(rec: &[u8]) -> Option<(bool, Series)> {
    let mut r = Reader::new(rec);
    match (r.u8()?, r.series()?) {
        (REC_ADD, s) => Some((true, s)),
        (REC_REMOVE, s) => Some((false, s)),
        _ => None,
    }
}

fn record(kind: u8, s: &Series) -> Vec<u8> {
    let mut p = vec![kind];
    put_series(&mut p, s);
    p
}

fn limit_of(limit: u64) -> usize {
    if limit == 0 {
        usize::MAX
    } else {
        usize::try_from(limit).unwrap_or(usize::MAX)
    }
}

impl MetadataStore {
    /// Opens (or creates) the registry in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<MetadataStore> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).ctx(dir)?;
        // Before reading: opening the log truncates a torn tail.
        let dir_lock = DirLock::acquire(dir)?;
        let path = dir.join("registry.log");
        let mut index = Index::default();
        let (mut records, mut removes) = (0usize, 0usize);
        let (log, _) = CompactedLog::open(dir, "registry", |offset, rec| {
            records += 1;
            match parse_registry_record(rec) {
                Some((true, s)) => {
                    index.insert(s);
                }
                Some((false, s)) => {
                    removes += 1;
                    index.remove(&s);
                }
                // An intact frame this version cannot read: skipped like damage.
                None => tracing::warn!(path = %path.display(), offset, "skipped an undecodable registry record"),
            }
        })?;
        if removes > 0 && removes * 2 >= records {
            rewrite(&log, &index)?;
        }
        Ok(MetadataStore { path, log, index: RwLock::new(index), _dir_lock: dir_lock })
    }

    /// The registry in `dir`, shared by every backend of this process that
    /// opens the same directory: a metadata and a suggest backend given one
    /// `data_dir` keep one copy of each series and sync one log for both.
    /// Other processes are still kept out by the directory's lock.
    pub fn open_shared(dir: impl AsRef<Path>) -> Result<Arc<MetadataStore>> {
        static OPEN: Mutex<Vec<(PathBuf, Weak<MetadataStore>)>> = Mutex::new(Vec::new());
        let dir = dir.as_ref();
        fs::create_dir_all(dir).ctx(dir)?;
        let key = dir.canonicalize().ctx(dir)?;
        // Held while opening, so that two backends opening one directory at
        // once get one store, not a lock error for the second.
        let mut open = OPEN.lock();
        open.retain(|(_, store)| store.strong_count() > 0);
        if let Some(store) = open.iter().find(|(k, _)| *k == key).and_then(|(_, s)| s.upgrade()) {
            return Ok(store);
        }
        let store = Arc::new(MetadataStore::open(dir)?);
        open.push((key, Arc::downgrade(&store)));
        Ok(store)
    }

    /// Registers series; returns how many were new. Durable on return.
    pub fn write(&self, series: &[Series]) -> Result<usize> {
        let Some(fresh) = self.fresh(series) else {
            return Ok(0);
        };
        // Appended without holding the index: concurrent writers of new
        // series then share one fsync (the log's group commit) instead of
        // taking turns. Two writers of the same new series both append it;
        // replaying it twice is harmless (`insert` keeps the first).
        let payloads: Vec<Vec<u8>> = fresh.iter().map(|s| record(REC_ADD, s)).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        self.log.append(&refs)?;
        Ok(self.insert(fresh))
    }

    /// [`write`](Self::write) for a caller on an async executor, whose
    /// threads must not block: the fsync is awaited, and when the log has
    /// no leader `start_leader` gets one, to run on a thread that may block
    /// (dropped unrun, it runs all the same; see `log/queued.rs`). `None`,
    /// having written nothing, while the log is broken: the caller then
    /// runs [`write`](Self::write), which recovers it first.
    pub async fn write_queued(
        self: &Arc<Self>,
        series: &[Series],
        start_leader: impl Fn(Leader) + Sync,
    ) -> Option<Result<usize>> {
        let Some(fresh) = self.fresh(series) else {
            return Some(Ok(0));
        };
        let ticket = {
            let payloads: Vec<Vec<u8>> = fresh.iter().map(|s| record(REC_ADD, s)).collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            self.log.enqueue(&refs)?
        };
        let start = || {
            let store = self.clone();
            start_leader(Leader::new(move || store.log.lead_queued()));
        };
        if let Err(e) = self.log.durable(ticket, &start).await {
            return Some(Err(e));
        }
        Some(Ok(self.insert(fresh)))
    }

    /// The series of `series` not registered yet, normalized and once
    /// each; `None` when there are none.
    fn fresh(&self, series: &[Series]) -> Option<Vec<Series>> {
        let normalized = |s: &Series| {
            let mut s = s.clone();
            s.normalize();
            s
        };
        let index = self.index.read();
        if series.iter().all(|s| index.contains(s)) {
            return None;
        }
        // A set, not a list: many new series at once must not cost a
        // comparison per pair of them.
        let mut seen: HashSet<Series> = HashSet::new();
        Some(series.iter().map(normalized).filter(|s| !index.contains(s) && seen.insert(s.clone())).collect())
    }

    /// Adds durable series to the index; returns how many were new.
    fn insert(&self, fresh: Vec<Series>) -> usize {
        let mut index = self.index.write();
        fresh.into_iter().map(|s| index.insert(s)).filter(|added| *added).count()
    }

    /// Series matching `filter`, at most `limit` (0: all), in insertion order.
    pub fn find_series(&self, filter: &Filter, limit: u64) -> Result<SeriesPage> {
        let index = self.index.read();
        let set = index.eval(filter)?;
        let limit = limit_of(limit);
        let series: Vec<Series> = index.resolve(&set).take(limit).collect();
        Ok(SeriesPage { limited: index.set_len(&set) > limit, series: series.into() })
    }

    /// Number of matching series, capped at `limit` (0: no cap).
    pub fn count_series(&self, filter: &Filter, limit: u64) -> Result<CountResult> {
        let index = self.index.read();
        let n = index.set_len(&index.eval(filter)?);
        let limit = limit_of(limit);
        Ok(CountResult { count: n.min(limit) as u64, limited: n > limit })
    }

    /// Why the store cannot take writes, if it cannot. A registry whose last
    /// write failed is retried here first, so health clears by itself once
    /// the disk takes writes again, without waiting for a writer.
    pub fn trouble(&self) -> Option<String> {
        self.log.active().broken()?;
        self.log.active().recover().err().map(|e| e.to_string())
    }

    /// What degrades without failing writes: the registry cannot be
    /// compacted.
    pub fn warning(&self) -> Option<String> {
        self.log.trouble()
    }

    /// Removes matching series (at most `limit`, 0: all). Durable on return.
    pub fn delete_series(&self, filter: &Filter, limit: u64) -> Result<DeleteResult> {
        let mut index = self.index.write();
        let set = index.eval(filter)?;
        let victims: Vec<Series> = index.resolve(&set).take(limit_of(limit)).collect();
        let payloads: Vec<Vec<u8>> = victims.iter().map(|s| record(REC_REMOVE, s)).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        self.log.append(&refs)?;
        for s in &victims {
            index.remove(s);
        }
        Ok(DeleteResult { deleted: victims.len() as u64, failed: 0 })
    }

    /// Distinct keys of matching series, sorted, at most `limit`.
    pub fn find_keys(&self, filter: &Filter, limit: u64) -> Result<KeysPage> {
        let index = self.index.read();
        let set = index.eval(filter)?;
        let keys = index.keys_of(&set);
        let limit = limit_of(limit);
        Ok(KeysPage { limited: keys.len() > limit, keys: keys.into_iter().take(limit).map(RString::from).collect() })
    }

    /// Tag keys of matching series with their distinct values, at most
    /// `limit` values per key (as the SDK's derived answer does).
    pub fn find_tags(&self, filter: &Filter, limit: u64) -> Result<TagsPage> {
        let index = self.index.read();
        let set = index.eval(filter)?;
        let limit = limit_of(limit);
        let mut any = false;
        let tags = index
            .tags_of(&set)
            .into_iter()
            .map(|(key, values)| {
                let limited = values.len() > limit;
                any |= limited;
                TagValues {
                    key: key.into(),
                    limited,
                    values: values.into_iter().take(limit).map(RString::from).collect(),
                }
            })
            .collect();
        Ok(TagsPage { tags, limited: any })
    }

    /// Number of series registered.
    pub fn len(&self) -> usize {
        self.index.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Rewrites the log with one `add` per live series.
fn rewrite(log: &CompactedLog, index: &Index) -> Result<()> {
    // A series' bytes in the index are what `record` writes after the kind.
    let records: Vec<Vec<u8>> = index.all_bytes().map(|b| [&[REC_ADD][..], b].concat()).collect();
    log.rewrite(records.iter().map(Vec::as_slice))
}
