use super::*;
use std::sync::atomic::{AtomicBool, AtomicU64};
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
    // Generous: 4 000 writes, each with a process-wide barrier, behind four
    // spinning readers on a loaded 2-core machine took over 30 s once.
    match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(r) => r,
        Err(_) => panic!("{what} did not finish within 180 s (deadlock?)"),
    }
}

#[test]
fn readers_never_see_a_write_half_done() {
    within("readers and writers", || {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let stop = Arc::new(AtomicBool::new(false));
        // The writers start once every reader has read (however long the
        // threads take to be scheduled), and the readers read until the
        // writers are done.
        let all_in = Arc::new(Barrier::new(4 + 2));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (lock, stop, all_in) = (lock.clone(), stop.clone(), all_in.clone());
                thread::spawn(move || {
                    let mut last = 0;
                    let mut read = || {
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
                    };
                    read();
                    all_in.wait();
                    while !stop.load(Ordering::Relaxed) {
                        read();
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (lock, all_in) = (lock.clone(), all_in.clone());
                thread::spawn(move || {
                    all_in.wait();
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
        for r in readers {
            r.join().expect("reader");
        }
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

/// The id of the calling thread, as `/proc` names it.
#[cfg(target_os = "linux")]
fn thread_id() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    let tid = link
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a thread id");
    tid.parse().expect("a numeric thread id")
}

/// Whether thread `tid` of this process is asleep (blocked in the kernel,
/// as a thread parked on a lock is), from its state in `/proc`.
#[cfg(target_os = "linux")]
fn asleep(tid: u64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    state.is_some_and(|s| s.starts_with('S'))
}

#[test]
#[cfg(target_os = "linux")]
fn a_reader_arriving_during_a_write_waits_and_sees_it() {
    within("reader during a write", || {
        let lock = Arc::new(ReadMostly::new(Pair::default()));
        let w = lock.write();
        // The reader publishes its thread id just before it calls `read`.
        let about_to_read = Arc::new(AtomicU64::new(0));
        let reader = {
            let (lock, about_to_read) = (lock.clone(), about_to_read.clone());
            thread::spawn(move || {
                // Its slot first: from the signal on, nothing but `read`
                // itself can put this thread to sleep.
                this_thread_slot();
                about_to_read.store(thread_id(), Ordering::Release);
                let r = lock.read();
                (r.a, r.b)
            })
        };
        let tid = loop {
            match about_to_read.load(Ordering::Acquire) {
                0 => thread::yield_now(),
                tid => break tid,
            }
        };
        // Until the reader sleeps inside `read`, behind the writer. A reader
        // that ignored the write would return instead (and never sleep
        // before it had read).
        while !asleep(tid) {
            assert!(!reader.is_finished(), "a reader ran during a write");
            thread::sleep(Duration::from_millis(1));
        }
        assert!(!reader.is_finished(), "a reader ran during a write");
        let mut w = w;
        w.a = 7;
        w.b = 7;
        drop(w);
        assert_eq!(
            reader.join().expect("reader"),
            (7, 7),
            "the reader waited for the write and saw it"
        );
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
