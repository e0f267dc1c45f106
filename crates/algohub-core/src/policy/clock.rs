//! A coarse clock for expiry checks in decisions: one atomic load instead of a
//! system call. A background thread refreshes it every 20 ms.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

static NOW: AtomicI64 = AtomicI64::new(0);
static TICKER: OnceLock<bool> = OnceLock::new();

fn real_now() -> i64 {
    crate::model::now_millis()
}

/// Milliseconds since the epoch, at most ~20 ms stale.
pub fn coarse_now_millis() -> i64 {
    let ticking = *TICKER.get_or_init(|| {
        NOW.store(real_now(), Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("algohub-clock".into())
            .spawn(|| {
                loop {
                    NOW.store(real_now(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        if spawned.is_err() {
            tracing::warn!(
                "could not start the clock thread; reading the system clock per decision"
            );
        }
        spawned.is_ok()
    });
    if ticking {
        NOW.load(Ordering::Relaxed)
    } else {
        real_now()
    }
}
