//! A counting global allocator: between `start()` and `stop()` it adds up the
//! bytes allocated and freed, so `stop()` returns what a build kept (net heap
//! bytes). Outside a window it costs one relaxed atomic load per call.
//!
//! This is the one place in the workspace with `unsafe`: implementing
//! `GlobalAlloc` requires it. Every call is forwarded unchanged to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments; the
// counters are plain atomics and never touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if ON.load(Relaxed) && !p.is_null() {
            ALLOCATED.fetch_add(layout.size() as u64, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if ON.load(Relaxed) && !p.is_null() {
            ALLOCATED.fetch_add(layout.size() as u64, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Relaxed) {
            FREED.fetch_add(layout.size() as u64, Relaxed);
        }
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if ON.load(Relaxed) && !p.is_null() {
            FREED.fetch_add(layout.size() as u64, Relaxed);
            ALLOCATED.fetch_add(new_size as u64, Relaxed);
        }
        p
    }
}

/// Starts counting (resets the counters).
pub fn start() {
    ALLOCATED.store(0, Relaxed);
    FREED.store(0, Relaxed);
    ON.store(true, Relaxed);
}

/// Stops counting; returns the net bytes allocated since `start()` (negative if
/// the window freed more than it allocated).
pub fn stop() -> i64 {
    ON.store(false, Relaxed);
    ALLOCATED.load(Relaxed) as i64 - FREED.load(Relaxed) as i64
}
