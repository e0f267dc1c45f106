//! Keeps the policy engine's coarse clock current
//! (`algohub_core::policy::coarse_now_millis`): a thread of its own sets it
//! every 20 ms, so a decision's expiry checks cost one atomic load.

use std::sync::OnceLock;
use std::time::Duration;

static STARTED: OnceLock<()> = OnceLock::new();

/// Starts the ticking thread once per process (later calls do nothing). If
/// the thread cannot start, decisions read the system clock instead.
pub fn start() {
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("algohub-clock".into())
            .spawn(|| {
                loop {
                    algohub_core::policy::tick_coarse_clock();
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the clock thread; decisions read the system clock");
        }
    });
}
