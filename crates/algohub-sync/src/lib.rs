#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! `ReadMostly<T>`: a reader-writer lock for data that is read on every
//! request and written rarely (the policy index), whose readers do no atomic
//! read-modify-write.
//!
//! Why: taking and releasing a `RwLock` for reading costs two locked
//! instructions (`lock cmpxchg`, `lock xadd` on x86), and each is a full
//! memory barrier. A policy decision is a few dependent loads, usually cache
//! misses; the barriers keep the misses of one decision from overlapping
//! those of the next, and the lock alone cost about a fifth of the engine's
//! throughput in `policy-bench`.
//!
//! How: an asymmetric Dekker handshake, the pattern of Linux's
//! `membarrier(2)` man page.
//! - Each thread has a slot (a cache line of its own) in every lock. A reader
//!   adds one to its own slot with a plain store, issues a compiler-only fence
//!   (`membarrier2::light`), and loads the lock's `writing` flag. If it is
//!   clear, the reader reads; dropping its guard takes the one back with a
//!   release store.
//! - A writer takes `gate` exclusively, sets `writing`, issues a process-wide
//!   barrier (`membarrier2::heavy`: the `membarrier` system call), then waits
//!   until every slot is zero. The barrier ensures that each reader either
//!   published its slot before the writer looks at it, or sees `writing` set.
//! - A reader that finds `writing` set takes its one back and waits on `gate`
//!   shared, as do threads without a slot (beyond `SLOTS` threads alive at
//!   once): correct, only slower.
//! - Reads nest: a thread already in a read does not look at `writing` again
//!   (no writer can be writing while its slot is nonzero), so a nested read
//!   never waits for a writer that waits for the outer one.
//!
//! Writes cost a system call and a scan of the slots (microseconds); the
//! policy index is written once per store change.
//!
//! The crate's other primitive, [`MappedFile`], maps a file for appending
//! without a system call per append (the usage journal; `mapped.rs`).

mod mapped;
pub use mapped::MappedFile;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Threads that can read through the fast path at once (more are correct,
/// through `gate`). Each lock spends one 128-byte line per slot (16 KiB).
pub const SLOTS: usize = 128;

/// A reader count on a line of its own (128 bytes: x86 prefetches lines in
/// pairs), written only by the thread that owns the slot.
#[repr(align(128))]
struct Slot(AtomicUsize);

pub struct ReadMostly<T> {
    value: UnsafeCell<T>,
    /// Set while a writer waits for readers to leave or writes.
    writing: AtomicBool,
    /// Fast-path read guards each thread holds, by thread slot.
    readers: Box<[Slot]>,
    /// Held exclusively by the writer; shared by readers that found a writer
    /// (or have no slot).
    gate: RwLock<()>,
}

// SAFETY: `value` is only read through `ReadGuard`s, which exist only while no
// writer writes (module docs), and only written through the one `WriteGuard`,
// which exists only while no reader reads: sharing the lock across threads
// shares `&T` (needs `T: Sync`) and hands `&mut T` to other threads (needs
// `T: Send`), as `std::sync::RwLock` does.
unsafe impl<T: Send + Sync> Sync for ReadMostly<T> {}

impl<T: Default> Default for ReadMostly<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> ReadMostly<T> {
    pub fn new(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
            writing: AtomicBool::new(false),
            readers: (0..SLOTS).map(|_| Slot(AtomicUsize::new(0))).collect(),
            gate: RwLock::new(()),
        }
    }

    /// Shared access; waits only while a writer writes.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_, T> {
        let slot = this_thread_slot();
        if let Some(Slot(count)) = self.readers.get(slot) {
            // Only this thread writes its slot: a plain load and store.
            let held = count.load(Ordering::Relaxed);
            count.store(held + 1, Ordering::Relaxed);
            membarrier2::light();
            if held > 0 || !self.writing.load(Ordering::Acquire) {
                return ReadGuard {
                    lock: self,
                    how: How::Slot(count),
                    _not_send: PhantomData,
                };
            }
            count.store(held, Ordering::Release);
        }
        ReadGuard {
            lock: self,
            how: How::Gate(self.gate.read_recursive()),
            _not_send: PhantomData,
        }
    }

    /// Exclusive access: waits for the other writers, then for the readers.
    ///
    /// # Panics
    /// If this thread holds a read guard of this lock (it would wait for
    /// itself forever).
    pub fn write(&self) -> WriteGuard<'_, T> {
        if let Some(Slot(count)) = self.readers.get(this_thread_slot()) {
            assert!(
                count.load(Ordering::Relaxed) == 0,
                "ReadMostly::write on a thread that holds a read guard of the same lock"
            );
        }
        let gate = self.gate.write();
        self.writing.store(true, Ordering::Relaxed);
        membarrier2::heavy();
        for Slot(count) in self.readers.iter() {
            let mut waited = 0u32;
            while count.load(Ordering::Acquire) != 0 {
                back_off(&mut waited);
            }
        }
        WriteGuard {
            lock: self,
            _gate: gate,
        }
    }

    /// The value, for the lock's owner (no other reference can exist).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

/// Spins briefly, then yields, then sleeps: a reader that holds its guard is
/// usually gone within nanoseconds, but it may have been preempted.
fn back_off(waited: &mut u32) {
    if *waited < 64 {
        std::hint::spin_loop();
    } else if *waited < 1_000 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
    *waited = waited.saturating_add(1);
}

enum How<'a> {
    /// Counted in this thread's slot.
    Slot(&'a AtomicUsize),
    /// Shared hold of the gate.
    Gate(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
}

/// Shared access to a `ReadMostly`. Not `Send`: a slot guard must be
/// released by the thread that owns the slot.
pub struct ReadGuard<'a, T> {
    lock: &'a ReadMostly<T>,
    how: How<'a>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: while this guard lives, no `WriteGuard` exists: a slot
        // guard's count keeps writers waiting in `write`, a gate guard keeps
        // them out of `gate`.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let How::Slot(count) = self.how {
            // Release: this read's loads happen before a writer that sees the
            // count drop starts writing.
            count.store(count.load(Ordering::Relaxed) - 1, Ordering::Release);
        }
    }
}

/// Exclusive access to a `ReadMostly`.
pub struct WriteGuard<'a, T> {
    lock: &'a ReadMostly<T>,
    _gate: RwLockWriteGuard<'a, ()>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only access to the value (see `write`).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only access to the value: it holds `gate`
        // exclusively (no gate readers, no other writer) and `write` waited
        // for every slot to drain after setting `writing`, which turns new
        // slot readers to the gate.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Release: a reader that sees the flag clear sees the writes. The gate
        // is released after this (fields drop after `drop`).
        self.lock.writing.store(false, Ordering::Release);
    }
}

/// The slot of a thread that has none yet.
const UNASSIGNED: usize = usize::MAX;
/// The slot of a thread that gets none (all taken, or exiting).
const NO_SLOT: usize = usize::MAX - 1;

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
    static RELEASE: SlotRelease = const { SlotRelease };
}

/// Slots given back by threads that ended.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// The next slot never given out.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Gives the thread's slot back when the thread ends.
struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        // Later reads on this thread (from other thread-locals' destructors)
        // go through the gate.
        let slot = SLOT.with(|s| s.replace(NO_SLOT));
        if slot < SLOTS {
            FREE.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(slot);
        }
    }
}

/// This thread's slot: an index below `SLOTS`, or `NO_SLOT`.
#[inline]
fn this_thread_slot() -> usize {
    let slot = SLOT.with(Cell::get);
    if slot != UNASSIGNED {
        slot
    } else {
        assign_slot()
    }
}

#[cold]
fn assign_slot() -> usize {
    // A thread whose locals are already being destroyed could not give a
    // slot back: it gets none.
    let slot = if RELEASE.try_with(|_| ()).is_ok() {
        let reused = FREE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        reused
            .or_else(|| {
                let next = NEXT.fetch_add(1, Ordering::Relaxed);
                (next < SLOTS).then_some(next)
            })
            .unwrap_or(NO_SLOT)
    } else {
        NO_SLOT
    };
    SLOT.with(|s| s.set(slot));
    slot
}

#[cfg(test)]
mod tests;
