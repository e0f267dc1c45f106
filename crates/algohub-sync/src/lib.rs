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
//! The handshake is checked by loom (`loom_tests.rs`, run by `.ci/run` as
//! `RUSTFLAGS="--cfg loom" cargo test -p algohub-sync --release loom`): every
//! interleaving of readers (on slots and through the gate, nested or not)
//! and writers, with each access to the value checked against the memory
//! model; `sync.rs` says how the barriers are modelled.
//!
//! The crate's other primitive, [`MappedFile`], maps a file for appending
//! without a system call per append (the usage journal; `mapped.rs`).

mod mapped;
mod sync;
pub use mapped::MappedFile;
pub use sync::SLOTS;

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use sync::{
    AtomicBool, AtomicUsize, ConstPtr, Gate, GateRead, GateWrite, MutPtr, Ordering, UnsafeCell,
    back_off, heavy_barrier, light_barrier, read_gate, this_thread_slot, write_gate,
};

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
    gate: Gate,
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
            gate: Gate::new(()),
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
            light_barrier();
            if held > 0 || !self.writing.load(Ordering::Acquire) {
                return ReadGuard {
                    value: self.value.get(),
                    _hold: ReadHold::Slot(SlotHold(count)),
                    _not_send: PhantomData,
                };
            }
            count.store(held, Ordering::Release);
        }
        let gate = read_gate(&self.gate);
        ReadGuard {
            value: self.value.get(),
            _hold: ReadHold::Gate(gate),
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
        let gate = write_gate(&self.gate);
        self.writing.store(true, Ordering::Relaxed);
        heavy_barrier();
        for Slot(count) in self.readers.iter() {
            let mut waited = 0u32;
            while count.load(Ordering::Acquire) != 0 {
                back_off(&mut waited);
            }
        }
        WriteGuard {
            value: self.value.get_mut(),
            _writing: WritingHold(&self.writing),
            _gate: gate,
        }
    }

    /// The value, for the lock's owner (no other reference can exist).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.exclusive()
    }

    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

/// What a read guard holds. (Fields drop in order, so a guard's pointer to
/// the value is gone before its hold is released.)
/// (Held for their `Drop`, never read.)
#[allow(dead_code)]
enum ReadHold<'a> {
    /// Counted in this thread's slot.
    Slot(SlotHold<'a>),
    /// Shared hold of the gate.
    Gate(GateRead<'a>),
}

/// One count in this thread's slot, taken back on drop.
struct SlotHold<'a>(&'a AtomicUsize);

impl Drop for SlotHold<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: this read's loads happen before a writer that sees the
        // count drop starts writing.
        self.0
            .store(self.0.load(Ordering::Relaxed) - 1, Ordering::Release);
    }
}

/// Shared access to a `ReadMostly`. Not `Send`: a slot guard must be
/// released by the thread that owns the slot.
pub struct ReadGuard<'a, T> {
    value: ConstPtr<T>,
    _hold: ReadHold<'a>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared `&ReadGuard` only hands out `&T` (as a `&T` would, which is
// `Send` when `T: Sync`); the pointer field is what keeps this from being automatic.
unsafe impl<T: Sync> Sync for ReadGuard<'_, T> {}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: while this guard lives, no `WriteGuard` exists: a slot
        // guard's count keeps writers waiting in `write`, a gate guard keeps
        // them out of `gate`.
        unsafe { self.value.deref() }
    }
}

/// The `writing` flag, cleared on drop.
struct WritingHold<'a>(&'a AtomicBool);

impl Drop for WritingHold<'_> {
    fn drop(&mut self) {
        // Release: a reader that sees the flag clear sees the writes. The gate
        // is released after this (the guard's next field).
        self.0.store(false, Ordering::Release);
    }
}

/// Exclusive access to a `ReadMostly`.
pub struct WriteGuard<'a, T> {
    value: MutPtr<T>,
    _writing: WritingHold<'a>,
    _gate: GateWrite<'a>,
}

// SAFETY: as for `ReadGuard`: a shared `&WriteGuard` only hands out `&T`.
unsafe impl<T: Sync> Sync for WriteGuard<'_, T> {}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only access to the value (see `write`).
        unsafe { self.value.deref() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only access to the value: it holds `gate`
        // exclusively (no gate readers, no other writer) and `write` waited
        // for every slot to drain after setting `writing`, which turns new
        // slot readers to the gate.
        unsafe { self.value.deref() }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
