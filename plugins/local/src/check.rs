//! `heroic-shell check-data` for the `local` plugin: reads a data directory
//! as opening it would, but changes nothing (no truncated tail, no removed
//! file, no lock taken), so it can run next to a node that uses it.
//!
//! It reports what opening would skip or drop: damaged stretches of logs
//! (file, offset, bytes lost), torn tails, records that do not decode,
//! unreadable segments and blocks, and series whose points are kept but
//! whose definition is lost.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use heroic_plugin_api::check::{CheckFinding, CheckReport};
use heroic_plugin_api::PluginError;

use crate::backends::{MetadataConfig, MetricsConfig, SuggestConfig};
use crate::codec::decode_block;
use crate::compacted;
use crate::flush::parse_wal_name;
use crate::frame::scan;
use crate::metadata::parse_registry_record;
use crate::segment::{parse_segment_name, Segment};
use crate::store::{parse_catalog_record, CatalogRecord};
use crate::wal_record::{apply_points, parse_define};

/// The plugin's data check (see `heroic_plugin_api::check`).
pub fn check(role: &str, config: serde_json::Value) -> Result<CheckReport, PluginError> {
    fn parse<T: serde::de::DeserializeOwned>(config: serde_json::Value) -> Result<T, PluginError> {
        serde_json::from_value(config).map_err(|e| PluginError::config(format_args!("invalid config: {e}")))
    }
    let (dir, metrics) = match role {
        "metrics" => (parse::<MetricsConfig>(config)?.data_dir, true),
        "metadata" => (parse::<MetadataConfig>(config)?.data_dir, false),
        "suggest" => (parse::<SuggestConfig>(config)?.data_dir, false),
        other => return Err(PluginError::config(format_args!("the local plugin has no {other} backend"))),
    };
    if !dir.is_dir() {
        return Err(PluginError::config(format_args!("data directory {} does not exist", dir.display())));
    }
    let mut c = Checker::default();
    if metrics {
        c.metrics_dir(&dir);
    } else {
        c.registry(&dir);
    }
    Ok(CheckReport { checked: c.checked.join(", ").into(), findings: c.findings.into() })
}

#[derive(Default)]
struct Checker {
    checked: Vec<String>,
    findings: Vec<CheckFinding>,
}

impl Checker {
    fn found(&mut self, damage: bool, path: &Path, offset: u64, bytes: u64, message: impl Into<String>) {
        let path = path.display().to_string().into();
        self.findings.push(CheckFinding { damage, path, offset, bytes, message: message.into().into() });
    }

    /// A file's bytes, or a finding that it cannot be read.
    fn read(&mut self, path: &Path) -> Option<Vec<u8>> {
        std::fs::read(path).map_err(|e| self.found(true, path, 0, 0, format!("cannot read: {e}"))).ok()
    }

    /// Reads a log; reports damage, a torn tail and records `decode`
    /// refuses. Returns the number of intact records.
    fn log(&mut self, path: &Path, mut decode: impl FnMut(&[u8]) -> bool) -> usize {
        let Some(data) = self.read(path) else { return 0 };
        let mut records = 0;
        let mut undecodable = Vec::new();
        let (good, damage) = scan(&data, |offset, rec| {
            records += 1;
            if !decode(rec) {
                undecodable.push((offset, rec.len()));
            }
        });
        for (offset, bytes) in damage.skipped {
            self.found(
                true,
                path,
                offset as u64,
                bytes as u64,
                "damaged stretch: skipped, the records after it are kept",
            );
        }
        for (offset, bytes) in undecodable {
            self.found(true, path, offset as u64, bytes as u64, "intact record that does not decode: skipped");
        }
        if damage.tail > 0 {
            self.found(
                false,
                path,
                good as u64,
                damage.tail as u64,
                "torn tail: bytes after the last intact record, usually a write cut short by a crash (never acknowledged); dropped when the store opens",
            );
        }
        records
    }

    fn metrics_dir(&mut self, dir: &Path) {
        let mut defined = BTreeSet::new();
        let catalog = self.compacted(dir, "series", |rec| match parse_catalog_record(rec) {
            Some(CatalogRecord::Def { id, .. }) => {
                defined.insert(id);
                true
            }
            Some(CatalogRecord::Tombstone { .. }) => true,
            None => false,
        });
        if let Some((n, files)) = &catalog {
            self.checked.push(format!("{files} ({n} records, {} series)", defined.len()));
        }
        let mut used = BTreeSet::new();
        let (mut wals, mut segments): (Vec<PathBuf>, Vec<PathBuf>) = (Vec::new(), Vec::new());
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.found(true, dir, 0, 0, format!("cannot list: {e}")),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                self.found(false, &entry.path(), 0, 0, "unfinished file of an interrupted flush: removed at open");
            } else if parse_wal_name(&name).is_some() {
                wals.push(entry.path());
            } else if parse_segment_name(&name).is_some() {
                segments.push(entry.path());
            }
        }
        wals.sort();
        segments.sort();
        let mut wal_records = 0;
        let in_catalog = defined.len();
        for wal in &wals {
            let mut head = crate::head::Head::default();
            wal_records += self.log(wal, |rec| {
                if let Some((id, _)) = parse_define(rec) {
                    defined.insert(id);
                    return true;
                }
                match apply_points(rec, &mut head) {
                    Some(top) => {
                        used.extend(top);
                        true
                    }
                    None => false,
                }
            });
            used.extend(head.series.keys().copied());
        }
        self.checked.push(format!(
            "{} write-ahead log(s) ({wal_records} records, {} new series)",
            wals.len(),
            defined.len() - in_catalog
        ));
        let (mut blocks, mut points) = (0u64, 0u64);
        for path in &segments {
            let (seg, metas) = match Segment::open(path) {
                Ok(s) => s,
                Err(e) => {
                    self.found(true, path, 0, 0, format!("unreadable segment, its points are lost: {e}"));
                    continue;
                }
            };
            let (mut buf, mut ts, mut vals, mut scratch) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for m in &metas {
                used.insert(m.series);
                let ok = seg.read_block(m, &mut buf).and_then(|()| {
                    ts.clear();
                    vals.clear();
                    decode_block(&buf, &mut ts, &mut vals, &mut scratch)
                });
                match ok {
                    Ok(_) if ts.len() == m.count as usize => {
                        blocks += 1;
                        points += u64::from(m.count);
                    }
                    Ok(_) => self.found(
                        true,
                        path,
                        m.offset,
                        u64::from(m.len),
                        "block holds fewer points than its index says",
                    ),
                    Err(e) => self.found(
                        true,
                        path,
                        m.offset,
                        u64::from(m.len),
                        format!("unreadable block of series id {}: {e}", m.series),
                    ),
                }
            }
        }
        self.checked.push(format!("{} segment(s) ({blocks} blocks, {points} points)", segments.len()));
        let orphans: Vec<u64> = used.difference(&defined).copied().collect();
        if !orphans.is_empty() && catalog.is_some() {
            self.found(
                true,
                &dir.join("series.log"),
                0,
                0,
                format!(
                    "{} series hold points but their definition is lost (ids {}{}): their points cannot be queried",
                    orphans.len(),
                    orphans.iter().take(10).map(u64::to_string).collect::<Vec<_>>().join(", "),
                    if orphans.len() > 10 { ", …" } else { "" }
                ),
            );
        }
    }

    fn registry(&mut self, dir: &Path) {
        match self.compacted(dir, "registry", |rec| parse_registry_record(rec).is_some()) {
            Some((n, files)) => self.checked.push(format!("{files} ({n} records)")),
            None => self.checked.push("no registry.log yet".into()),
        }
    }

    /// Reads a compacted log (`compacted.rs`) as opening it would: its
    /// snapshot, the sealed logs above it, the active log. Returns the
    /// number of intact records and the files read, or `None` when the log
    /// has no files yet.
    fn compacted(&mut self, dir: &Path, name: &str, mut decode: impl FnMut(&[u8]) -> bool) -> Option<(usize, String)> {
        let found = match compacted::files(dir, name) {
            Ok(f) => f,
            Err(e) => {
                self.found(true, dir, 0, 0, format!("cannot list: {e}"));
                return None;
            }
        };
        for p in &found.stale {
            self.found(false, p, 0, 0, "held by a newer snapshot (an interrupted compaction): removed at open");
        }
        let mut read = Vec::new();
        let mut n = 0;
        if let Some((_, path)) = &found.snapshot {
            n += self.snapshot(path, &mut decode);
            read.push(path);
        }
        for (_, path) in &found.sealed {
            n += self.log(path, &mut decode);
            read.push(path);
        }
        if found.active.exists() {
            n += self.log(&found.active, &mut decode);
            read.push(&found.active);
        }
        if read.is_empty() {
            return None;
        }
        let names: Vec<String> =
            read.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
        Some((n, names.join(" + ")))
    }

    /// Reads a snapshot of a compacted log; reports damaged chunks and
    /// records `decode` refuses. Returns the number of intact records.
    fn snapshot(&mut self, path: &Path, mut decode: impl FnMut(&[u8]) -> bool) -> usize {
        let Some(data) = self.read(path) else { return 0 };
        let mut records = 0;
        let mut undecodable = Vec::new();
        let damage = compacted::read_snapshot(&data, |offset, rec| {
            records += 1;
            if !decode(rec) {
                undecodable.push(offset);
            }
        });
        for (offset, bytes) in damage.skipped {
            self.found(true, path, offset as u64, bytes as u64, "damaged chunk: its records are lost, the others kept");
        }
        if damage.tail > 0 {
            self.found(
                true,
                path,
                (data.len() - damage.tail) as u64,
                damage.tail as u64,
                "damaged chunk at the end: its records are lost",
            );
        }
        for offset in undecodable {
            self.found(true, path, offset as u64, 0, "intact record that does not decode: skipped");
        }
        records
    }
}

heroic_plugin_api::export_data_check!(check);

#[cfg(test)]
mod tests {
    use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints};
    use serde_json::json;

    use super::*;
    use crate::metrics::{MetricOptions, MetricStore};

    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn reports_damage_without_changing_a_byte() {
        let dir = tempfile::tempdir().unwrap();
        let config = json!({"data_dir": dir.path()});
        {
            let store =
                MetricStore::open(dir.path(), MetricOptions { background_flush: false, ..Default::default() }).unwrap();
            for i in 0..5 {
                let s = Series::new(format!("key-{i}"), [("host", "a")], []);
                let points = PointBatch::from_pairs(&[(1, 1.0), (2, 2.0)]);
                store.write(&[SeriesPoints { series: s, points }]).unwrap();
            }
            store.flush().unwrap();
            store
                .write(&[SeriesPoints {
                    series: Series::new("late", [("host", "b")], []),
                    points: PointBatch::from_pairs(&[(3, 3.0)]),
                }])
                .unwrap();
        }
        let clean = check("metrics", config.clone()).unwrap();
        assert!(!clean.damaged(), "{clean:?}");
        assert!(
            clean.checked.contains("5 series")
                && clean.checked.contains("1 new series")
                && clean.checked.contains("1 segment(s)"),
            "{}",
            clean.checked
        );

        // One flipped byte inside the definition of `key-2`, a torn write
        // at the end of the write-ahead log.
        let catalog = dir.path().join("series.log");
        let mut bytes = std::fs::read(&catalog).unwrap();
        let at = bytes.windows(5).position(|w| w == b"key-2").unwrap();
        bytes[at] ^= 0x20;
        std::fs::write(&catalog, &bytes).unwrap();
        let wal = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("wal-") && std::fs::metadata(p).unwrap().len() > 0
        });
        let wal = wal.expect("a write-ahead log with the late write");
        let mut w = std::fs::read(&wal).unwrap();
        w.extend_from_slice(&[0x5a; 8]);
        std::fs::write(&wal, &w).unwrap();

        let before = snapshot(dir.path());
        let report = check("metrics", config).unwrap();
        assert_eq!(snapshot(dir.path()), before, "the check changed the directory");
        assert!(report.damaged());
        let damaged: Vec<&CheckFinding> = report.findings.iter().filter(|f| f.damage).collect();
        assert!(
            damaged.iter().any(|f| f.path.ends_with("series.log") && f.bytes > 0 && f.message.contains("skipped")),
            "{report:?}"
        );
        assert!(damaged.iter().any(|f| f.message.contains("1 series hold points")), "{report:?}");
        let tail = report.findings.iter().find(|f| f.message.contains("torn tail")).expect("the torn tail");
        assert!(!tail.damage && tail.bytes == 8, "{tail:?}");
    }

    /// A registry large enough to be compacted is read through its
    /// snapshot; a damaged chunk of it is reported, and nothing changed.
    #[test]
    fn reads_a_compacted_registry_and_reports_a_damaged_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let n = 5_000;
        {
            let store = crate::metadata::MetadataStore::open(dir.path()).unwrap();
            for i in 0..n {
                store
                    .write(&[Series::new("m", [("instance", format!("i-{i:06}")), ("role", "db".into())], [])])
                    .unwrap();
            }
        }
        let config = json!({"data_dir": dir.path()});
        let clean = check("metadata", config.clone()).unwrap();
        assert!(!clean.damaged(), "{clean:?}");
        assert!(
            clean.checked.contains(".snap + registry.log") && clean.checked.contains(&format!("({n} records)")),
            "{}",
            clean.checked
        );

        let snap = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "snap"))
            .unwrap();
        let mut bytes = std::fs::read(&snap).unwrap();
        bytes[crate::frame::HEADER + 10] ^= 0x10; // inside the first chunk
        std::fs::write(&snap, &bytes).unwrap();
        let before = snapshot(dir.path());
        let report = check("metadata", config).unwrap();
        assert_eq!(snapshot(dir.path()), before, "the check changed the directory");
        assert!(report.findings.iter().any(|f| f.damage && f.message.contains("damaged chunk")), "{report:?}");
    }

    #[test]
    fn unknown_roles_and_missing_dirs_are_config_errors() {
        let e = check("metrics", json!({"data_dir": "/nonexistent/heroic"})).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(check("consumer", json!({})).is_err());
    }
}
