//! The metering comparison of `call-bench`: the metered and the unmetered
//! node at full load, in alternating rounds.

use super::{Options, load_each};
use std::path::Path;
use std::time::{Duration, Instant};

/// Rounds of the metering comparison.
pub const METERING_ROUNDS: usize = 5;

/// Full-load throughput of the metered and the unmetered node in alternating
/// rounds (metered, unmetered, metered, ...); each metered round is charged
/// the time its usage loader takes to catch up afterwards. The cost is read
/// from the median of the rounds' own ratios: each pairs two neighbouring
/// runs, so work that comes and goes on the machine touches both alike, and
/// the median drops a round that such work hit.
pub struct Metering {
    /// metered / unmetered requests/s of each round, in order.
    pub rounds: Vec<(f64, f64)>,
    pub settle: Duration,
    pub errors: u64,
}

impl Metering {
    /// The throughput lost to metering: 1 − the median round's ratio.
    pub fn cost(&self) -> f64 {
        let mut ratios: Vec<f64> = self.rounds.iter().map(|(m, u)| m / u).collect();
        ratios.sort_by(f64::total_cmp);
        1.0 - ratios[ratios.len() / 2]
    }
}

pub async fn metering_rounds(
    o: Options,
    hub: &algohub_core::services::Hub,
    [metered, unmetered]: [&str; 2],
    script: &Path,
) -> Result<Metering, String> {
    let mut m = Metering {
        rounds: Vec::with_capacity(METERING_ROUNDS),
        settle: Duration::ZERO,
        errors: 0,
    };
    let secs = o.seconds as f64;
    for _ in 0..METERING_ROUNDS {
        let on = load_each(o, &[("metered", metered)], script, o.connections).await?;
        let t = Instant::now();
        hub.metering
            .settle_usage()
            .await
            .map_err(|e| e.to_string())?;
        let settle = t.elapsed();
        m.settle = m.settle.max(settle);
        let off = load_each(o, &[("unmetered", unmetered)], script, o.connections).await?;
        m.rounds.push((
            on[0].1.rps * secs / (secs + settle.as_secs_f64()),
            off[0].1.rps,
        ));
        m.errors += on[0].1.errors + off[0].1.errors;
    }
    Ok(m)
}
