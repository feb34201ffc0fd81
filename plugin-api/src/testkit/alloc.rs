//! Allocation accounting for tests that must show an input cannot make
//! code allocate without bound: a global allocator that notes, per thread,
//! the largest single request and the total requested, and [`measured`] to
//! read them around one call.
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: heroic_plugin_api::testkit::alloc::Counting = heroic_plugin_api::testkit::alloc::Counting;
//!
//! let (result, cost) = measured(|| decode(&payload));
//! assert!(cost.largest < 1 << 20);
//! ```
//!
//! Per thread, so tests running in parallel do not see each other's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The system allocator, with per-thread bookkeeping (declare it as the test
/// binary's `#[global_allocator]`).
pub struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping
// touches only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees, passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees, passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's guarantees, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// What one call cost on its thread (meaningful only with [`Counting`] as
/// the global allocator).
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// The largest single allocation, in bytes.
    pub largest: usize,
    /// All bytes allocated (freed or not).
    pub total: usize,
    pub elapsed: Duration,
}

/// Runs `f` and says what it allocated and how long it took.
pub fn measured<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    let start = Instant::now();
    let out = f();
    let cost = Cost { largest: LARGEST.with(Cell::get), total: TOTAL.with(Cell::get), elapsed: start.elapsed() };
    (out, cost)
}
