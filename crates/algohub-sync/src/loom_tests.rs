//! loom checks of `ReadMostly`'s handshake: every interleaving (up to a
//! preemption bound) of readers and writers, each access to the value checked
//! by loom's cell against the memory model (a read guard alive while a write
//! guard is, or not ordered after it, fails the test). Built and run with
//! `RUSTFLAGS="--cfg loom" cargo test -p algohub-sync --release loom`; see
//! `sync.rs` for how the barriers and thread slots are modelled.

use super::*;
use loom::sync::Arc;
use loom::thread;

/// Two counters a writer keeps equal; a reader that sees them differ saw a
/// write half done.
#[derive(Default)]
struct Pair {
    a: u64,
    b: u64,
}

fn write_pair(lock: &ReadMostly<Pair>) {
    let mut w = lock.write();
    w.a += 1;
    w.b += 1;
}

fn read_pair(lock: &ReadMostly<Pair>) -> u64 {
    let r = lock.read();
    assert_eq!(r.a, r.b, "a read saw a write half done");
    r.a
}

/// Runs `f` under loom with a preemption bound (`LOOM_MAX_PREEMPTIONS`
/// overrides it), which keeps each model to seconds.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// A reader on a slot and a writer: the reader sees the value before or
/// after the write, never during it, and the writer waits for it.
#[test]
fn loom_a_reader_and_a_writer_never_overlap() {
    model(|| {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let reader = {
            let lock = lock.clone();
            thread::spawn(move || read_pair(&lock))
        };
        write_pair(&lock);
        let seen = reader.join().expect("reader");
        assert!(seen <= 1);
        assert_eq!(read_pair(&lock), 1, "the write is seen once it is done");
    });
}

/// Three threads and two slots: whichever thread comes last reads (or
/// writes) without a slot, through the gate, and still never overlaps a write.
#[test]
fn loom_a_reader_without_a_slot_takes_the_gate() {
    model(|| {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                thread::spawn(move || read_pair(&lock))
            })
            .collect();
        write_pair(&lock);
        for reader in readers {
            assert!(reader.join().expect("reader") <= 1);
        }
    });
}

/// A reader that reads again inside its read does not wait for a writer
/// that waits for its outer read (no deadlock), and sees one value in both.
#[test]
fn loom_nested_reads_never_wait_for_a_writer() {
    model(|| {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let reader = {
            let lock = lock.clone();
            thread::spawn(move || {
                let outer = lock.read();
                let inner = read_pair(&lock);
                assert_eq!(outer.a, inner, "one value inside one read");
                inner
            })
        };
        write_pair(&lock);
        assert!(reader.join().expect("reader") <= 1);
    });
}

/// Two writers are serialized (no write is lost), and a reader sees 0, 1
/// or 2 whole writes, never going back.
#[test]
fn loom_two_writers_and_a_reader() {
    model(|| {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                thread::spawn(move || write_pair(&lock))
            })
            .collect();
        let first = read_pair(&lock);
        let second = read_pair(&lock);
        assert!(first <= second && second <= 2, "{first} then {second}");
        for writer in writers {
            writer.join().expect("writer");
        }
        assert_eq!(read_pair(&lock), 2, "no write was lost");
    });
}

/// `get_mut` and `into_inner` (the owner's access) see every write.
#[test]
fn loom_the_owner_sees_every_write() {
    model(|| {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let writer = {
            let lock = lock.clone();
            thread::spawn(move || write_pair(&lock))
        };
        write_pair(&lock);
        writer.join().expect("writer");
        let mut lock = Arc::try_unwrap(lock).unwrap_or_else(|_| panic!("one owner"));
        lock.get_mut().a += 1;
        let pair = lock.into_inner();
        assert_eq!((pair.a, pair.b), (3, 2));
    });
}
