//! A coarse clock for expiry checks in decisions: one atomic load instead of
//! reading the system clock. The node keeps it current (`algohub::clock`
//! ticks it every 20 ms from a thread of its own: the core starts no
//! threads); until something ticks it, decisions read the system clock.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

struct CoarseClock {
    now: AtomicI64,
    ticking: AtomicBool,
}

impl CoarseClock {
    const fn new() -> Self {
        Self {
            now: AtomicI64::new(0),
            ticking: AtomicBool::new(false),
        }
    }

    fn read(&self) -> i64 {
        if self.ticking.load(Ordering::Relaxed) {
            self.now.load(Ordering::Relaxed)
        } else {
            crate::model::now_millis()
        }
    }

    fn tick(&self) {
        self.now
            .store(crate::model::now_millis(), Ordering::Relaxed);
        self.ticking.store(true, Ordering::Relaxed);
    }
}

static CLOCK: CoarseClock = CoarseClock::new();

/// Milliseconds since the epoch: at most one tick stale once the clock
/// ticks, exact before.
pub fn coarse_now_millis() -> i64 {
    CLOCK.read()
}

/// Sets the coarse clock to the system clock; whoever calls this must keep
/// calling it (every 20 ms is what the node does).
pub fn tick() {
    CLOCK.tick();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_until_ticked_then_held_between_ticks() {
        let clock = CoarseClock::new();
        let before = crate::model::now_millis();
        assert!(
            clock.read() >= before,
            "reads the system clock before a tick"
        );
        clock.tick();
        let held = clock.read();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.read(), held, "unchanged until the next tick");
        clock.tick();
        assert!(clock.read() >= held + 5);
    }
}
