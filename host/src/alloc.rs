//! Tuning of glibc's allocator for the way a node uses memory.
//!
//! A query moves large decoded batches (one allocation per series, tens of
//! kilobytes to megabytes) from a plugin to the host, which frees them once
//! they are folded; a write does the same with parsed points. With glibc's
//! defaults, memory freed at the top of a heap beyond 128 KiB is given back
//! to the kernel, and allocations over 128 KiB are separate mappings, so
//! every query and write page-faults its buffers in afresh: measured, a
//! third of a 1,000-series query's CPU time went to the kernel. Keeping
//! freed memory for reuse removes that.

/// glibc's `mallopt` parameters (malloc.h).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    pub const M_TRIM_THRESHOLD: i32 = -1;
    pub const M_MMAP_THRESHOLD: i32 = -3;
    extern "C" {
        pub fn mallopt(param: i32, value: i32) -> i32;
    }
}

/// Freed memory kept per heap before it is returned to the kernel.
const TRIM_THRESHOLD: i32 = 256 << 20;
/// Allocations above this get a mapping of their own (glibc's own upper
/// bound for its adaptive threshold).
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Applies the settings; called when a node starts.
/// A no-op on other platforms and C libraries.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters and is thread-safe
    // (glibc takes its arena locks).
    unsafe {
        if glibc::mallopt(glibc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 0
            || glibc::mallopt(glibc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 0
        {
            tracing::warn!("cannot tune the allocator (mallopt failed); queries will be slower");
        }
    }
}
