//! What `ReadMostly` is built on: atomics, the cell, the gate lock, the two
//! barriers and each thread's slot. Taken from std, parking_lot and
//! membarrier normally, and from loom when the crate's tests are built with
//! `--cfg loom`, so that loom explores every interleaving of the handshake
//! and checks every access to the value (`loom_tests.rs`).
//!
//! Under loom, both barriers are `fence(SeqCst)`: `membarrier2::heavy`
//! makes every other thread behave as if it had run a full fence at that
//! point, which is what a full fence in the reader (where `light` is) gives;
//! the real `light` is only a compiler fence, because the system call does the
//! reader's half. Thread slots are not recycled under loom (its threads are
//! few and short), and there are only `SLOTS` = 2 of them, so a third thread
//! takes the gate path.

#[cfg(not(all(test, loom)))]
pub use std_impl::SLOTS;
#[cfg(not(all(test, loom)))]
pub(crate) use std_impl::*;

#[cfg(all(test, loom))]
pub use loom_impl::SLOTS;
#[cfg(all(test, loom))]
pub(crate) use loom_impl::*;

/// The slot of a thread that gets none (all taken, or exiting).
pub(crate) const NO_SLOT: usize = usize::MAX - 1;
/// The slot of a thread that has none yet.
const UNASSIGNED: usize = usize::MAX;

#[cfg(not(all(test, loom)))]
mod std_impl {
    use super::{NO_SLOT, UNASSIGNED};
    use std::cell::Cell;
    use std::sync::Mutex;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Threads that can read through the fast path at once (more are
    /// correct, through `gate`). Each lock spends one 128-byte line per slot
    /// (16 KiB).
    pub const SLOTS: usize = 128;

    pub(crate) type Gate = parking_lot::RwLock<()>;
    pub(crate) type GateRead<'a> = parking_lot::RwLockReadGuard<'a, ()>;
    pub(crate) type GateWrite<'a> = parking_lot::RwLockWriteGuard<'a, ()>;

    /// Shared hold of the gate, even while a writer waits for it (a reader
    /// may already hold it further up its stack).
    #[inline]
    pub(crate) fn read_gate(gate: &Gate) -> GateRead<'_> {
        gate.read_recursive()
    }

    pub(crate) fn write_gate(gate: &Gate) -> GateWrite<'_> {
        gate.write()
    }

    /// The reader's half of the handshake: a compiler-only fence.
    #[inline]
    pub(crate) fn light_barrier() {
        membarrier2::light();
    }

    /// The writer's half: a barrier on every thread of the process.
    pub(crate) fn heavy_barrier() {
        membarrier2::heavy();
    }

    /// Spins briefly, then yields, then sleeps: a reader that holds its guard
    /// is usually gone within nanoseconds, but it may have been preempted.
    pub(crate) fn back_off(waited: &mut u32) {
        if *waited < 64 {
            std::hint::spin_loop();
        } else if *waited < 1_000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        *waited = waited.saturating_add(1);
    }

    /// An `UnsafeCell` with loom's interface: access through pointers whose
    /// lifetimes loom tracks (here, plain pointers).
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        #[inline]
        pub(crate) fn get(&self) -> ConstPtr<T> {
            ConstPtr(self.0.get())
        }

        pub(crate) fn get_mut(&self) -> MutPtr<T> {
            MutPtr(self.0.get())
        }

        pub(crate) fn exclusive(&mut self) -> &mut T {
            self.0.get_mut()
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    pub(crate) struct ConstPtr<T>(*const T);

    impl<T> ConstPtr<T> {
        /// # Safety
        /// As for dereferencing a `*const T`: no `&mut T` to the value exists
        /// while the result lives.
        #[inline]
        pub(crate) unsafe fn deref(&self) -> &T {
            // SAFETY: the pointer is from a live cell (the guard that holds
            // it borrows the lock); aliasing is the caller's contract.
            unsafe { &*self.0 }
        }
    }

    pub(crate) struct MutPtr<T>(*mut T);

    impl<T> MutPtr<T> {
        /// # Safety
        /// As for dereferencing a `*mut T`: no other reference to the value
        /// exists while the result lives.
        #[allow(clippy::mut_from_ref)]
        pub(crate) unsafe fn deref(&self) -> &mut T {
            // SAFETY: the pointer is from a live cell (the guard that holds
            // it borrows the lock); exclusivity is the caller's contract.
            unsafe { &mut *self.0 }
        }
    }

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
    pub(crate) fn this_thread_slot() -> usize {
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
}

#[cfg(all(test, loom))]
mod loom_impl {
    use super::{NO_SLOT, UNASSIGNED};
    pub(crate) use loom::cell::{ConstPtr, MutPtr};
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::cell::Cell;

    /// Few, so that a third thread takes the gate path.
    pub const SLOTS: usize = 2;

    pub(crate) type Gate = loom::sync::RwLock<()>;
    pub(crate) type GateRead<'a> = loom::sync::RwLockReadGuard<'a, ()>;
    pub(crate) type GateWrite<'a> = loom::sync::RwLockWriteGuard<'a, ()>;

    pub(crate) fn read_gate(gate: &Gate) -> GateRead<'_> {
        gate.read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write_gate(gate: &Gate) -> GateWrite<'_> {
        gate.write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn light_barrier() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy_barrier() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    pub(crate) fn back_off(_waited: &mut u32) {
        loom::thread::yield_now();
    }

    /// loom's cell, with the exclusive access `ReadMostly::get_mut` needs.
    pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::cell::UnsafeCell::new(value))
        }

        pub(crate) fn get(&self) -> ConstPtr<T> {
            self.0.get()
        }

        pub(crate) fn get_mut(&self) -> MutPtr<T> {
            self.0.get_mut()
        }

        pub(crate) fn exclusive(&mut self) -> &mut T {
            // SAFETY: `&mut self` rules out every other access.
            self.0.with_mut(|value| unsafe { &mut *value })
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    loom::thread_local! {
        static SLOT: Cell<usize> = Cell::new(UNASSIGNED);
    }

    loom::lazy_static! {
        static ref NEXT: AtomicUsize = AtomicUsize::new(0);
    }

    pub(crate) fn this_thread_slot() -> usize {
        SLOT.with(|slot| {
            if slot.get() == UNASSIGNED {
                let next = NEXT.fetch_add(1, Ordering::Relaxed);
                slot.set(if next < SLOTS { next } else { NO_SLOT });
            }
            slot.get()
        })
    }
}
