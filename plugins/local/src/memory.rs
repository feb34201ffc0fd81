//! How much memory the process may use, for sizing the decoded-block cache
//! when the config does not: a container's limit (cgroup v2 `memory.max`,
//! or v1 `memory.limit_in_bytes`) when it has one, else the machine's
//! memory (`MemTotal`). A cache sized for the machine in a small container
//! would get the process killed; one sized for a small machine on a large
//! one leaves long-range queries decoding every block on every run.

use std::path::Path;

/// The decoded-block cache's share of the memory the process may use.
const CACHE_SHARE: u64 = 10;
/// Bounds of the default cache.
const CACHE_MIN: u64 = 32 << 20;
const CACHE_MAX: u64 = 4 << 30;
/// The default when the memory cannot be found out.
const CACHE_UNKNOWN: u64 = 128 << 20;

/// The default size of the decoded-block cache, in bytes: a tenth of the
/// memory limit, between 32 MiB and 4 GiB.
pub(crate) fn default_block_cache_bytes() -> u64 {
    cache_for(memory_limit(Path::new("/")))
}

fn cache_for(limit: Option<u64>) -> u64 {
    limit.map_or(CACHE_UNKNOWN, |bytes| (bytes / CACHE_SHARE).clamp(CACHE_MIN, CACHE_MAX))
}

/// The memory limit seen from `root` (`/`, or a test's directory).
fn memory_limit(root: &Path) -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    let machine = read("proc/meminfo").and_then(|text| mem_total(&text));
    let cgroup = read("sys/fs/cgroup/memory.max")
        .or_else(|| read("sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|text| cgroup_limit(&text));
    match (cgroup, machine) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A cgroup's limit in bytes; `None` for `max` (v2) or the huge number v1
/// uses for "no limit".
fn cgroup_limit(text: &str) -> Option<u64> {
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes < 1 << 60).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(meminfo: Option<&str>, v2: Option<&str>, v1: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("proc/meminfo", meminfo),
            ("sys/fs/cgroup/memory.max", v2),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", v1),
        ] {
            if let Some(text) = text {
                let path = dir.path().join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
        }
        dir
    }

    #[test]
    fn the_limit_is_the_smaller_of_the_container_and_the_machine() {
        let meminfo = "MemTotal:       24683664 kB\nMemFree:  1 kB\n";
        let machine = 24683664 * 1024;
        assert_eq!(memory_limit(root(Some(meminfo), Some("max\n"), None).path()), Some(machine));
        assert_eq!(memory_limit(root(Some(meminfo), Some("1073741824\n"), None).path()), Some(1 << 30));
        assert_eq!(memory_limit(root(Some(meminfo), None, Some("9223372036854771712\n")).path()), Some(machine));
        assert_eq!(memory_limit(root(Some(meminfo), None, Some("536870912")).path()), Some(512 << 20));
        assert_eq!(memory_limit(root(None, Some("garbage"), None).path()), None);
    }

    #[test]
    fn the_default_cache_is_a_tenth_within_bounds() {
        assert!((CACHE_MIN..=CACHE_MAX).contains(&default_block_cache_bytes()));
        assert_eq!(cache_for(Some(1 << 30)), (1 << 30) / 10);
        assert_eq!(cache_for(Some(128 << 20)), 32 << 20);
        assert_eq!(cache_for(Some(1 << 40)), 4 << 30);
        assert_eq!(cache_for(None), 128 << 20);
    }
}
