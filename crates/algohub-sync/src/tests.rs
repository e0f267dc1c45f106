use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

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
    // Leave a window between the two halves for a reader to fall into.
    for _ in 0..50 {
        std::hint::spin_loop();
    }
    w.b += 1;
}

/// Runs `f` on a thread and fails the test if it does not finish in time (a
/// deadlock fails instead of hanging the suite).
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => r,
        Err(_) => panic!("{what} did not finish within 30 s (deadlock?)"),
    }
}

#[test]
fn readers_never_see_a_write_half_done() {
    within("readers and writers", || {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (lock, stop) = (lock.clone(), stop.clone());
                thread::spawn(move || {
                    let mut reads = 0u64;
                    let mut last = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let r = lock.read();
                        // A window between the two loads for a writer to
                        // fall into.
                        let a = std::hint::black_box(r.a);
                        for _ in 0..20 {
                            std::hint::spin_loop();
                        }
                        assert_eq!(a, r.b, "a read saw a write half done");
                        assert!(a >= last, "a read went back in time");
                        last = a;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                thread::spawn(move || {
                    for _ in 0..2_000 {
                        write_pair(&lock);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        stop.store(true, Ordering::Relaxed);
        let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
        assert!(reads > 0);
        let r = lock.read();
        assert_eq!((r.a, r.b), (4_000, 4_000), "every write landed once");
    });
}

#[test]
fn a_nested_read_does_not_wait_for_a_writer_waiting_on_the_outer_read() {
    within("nested read", || {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let outer = lock.read();
        let writer = {
            let lock = lock.clone();
            thread::spawn(move || write_pair(&lock))
        };
        // Until the writer has set `writing` and waits for this thread.
        let t0 = Instant::now();
        while !lock.writing.load(Ordering::Relaxed) {
            assert!(t0.elapsed() < Duration::from_secs(10), "writer never came");
            thread::yield_now();
        }
        let inner = lock.read();
        assert_eq!((inner.a, outer.a), (0, 0), "the writer waits for us");
        drop(inner);
        drop(outer);
        writer.join().expect("writer");
        assert_eq!(lock.read().b, 1);
    });
}

#[test]
fn a_reader_arriving_during_a_write_waits_and_sees_it() {
    within("reader during a write", || {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let w = lock.write();
        let reader = {
            let lock = lock.clone();
            thread::spawn(move || {
                let r = lock.read();
                (r.a, r.b)
            })
        };
        thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished(), "a reader ran during a write");
        let mut w = w;
        w.a = 7;
        w.b = 7;
        drop(w);
        assert_eq!(reader.join().expect("reader"), (7, 7));
    });
}

#[test]
fn more_threads_than_slots_read_correctly_and_slots_are_reused() {
    within("many threads", || {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let n = SLOTS + 24;
        let all_in = Arc::new(Barrier::new(n + 1));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (lock, all_in) = (lock.clone(), all_in.clone());
                thread::spawn(move || {
                    {
                        let r = lock.read();
                        assert_eq!(r.a, r.b);
                    }
                    // Every thread holds a slot (or has none) at once here.
                    all_in.wait();
                    for _ in 0..200 {
                        let r = lock.read();
                        assert_eq!(r.a, r.b);
                    }
                })
            })
            .collect();
        all_in.wait();
        for _ in 0..200 {
            write_pair(&lock);
        }
        for t in threads {
            t.join().expect("reader");
        }
        assert_eq!(lock.read().a, 200);
        // The ended threads gave their slots back.
        let slot = thread::spawn(this_thread_slot).join().expect("thread");
        assert!(slot < SLOTS, "a new thread got no slot: {slot}");
    });
}

#[test]
fn writing_while_reading_on_one_thread_is_refused() {
    let lock = ReadMostly::new(Pair::default());
    let r = lock.read();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(lock.write());
    }));
    assert!(refused.is_err());
    drop(r);
    write_pair(&lock);
    assert_eq!(lock.read().a, 1);
}
