//! A call's limits: its timeout (asked, cut to the algorithm's and the
//! cluster's caps) and its wasm fuel budget (a rate per second of that
//! timeout, cut to the algorithm's cap), and parsing the `timeout` option.

use crate::error::{Error, Result};
use std::time::Duration;

/// The largest timeout any call may have, in seconds (the Algorithmia API's
/// maximum); a cluster's `max_call_timeout` may be lower.
pub const MAX_TIMEOUT_SECS: f64 = 3000.0;
/// The timeout of a call that names none, unless the cluster sets another.
pub const DEFAULT_CALL_TIMEOUT_SECS: u64 = 300;
/// Wasm fuel a call gets per second of its timeout unless the cluster sets
/// another rate: about 90 times what a busy loop burns and 7 times the
/// densest ordinary loop measured (docs/guest-abi.md, Limits), so that a
/// runaway call is stopped by its deadline, not by its fuel. The same as
/// `algohub_runtime::DEFAULT_FUEL_PER_SEC`.
pub const DEFAULT_WASM_FUEL_PER_SEC: u64 = 100_000_000_000;
/// The algorithm setting that caps its calls' timeout (whole seconds).
pub(crate) const MAX_TIMEOUT_SETTING: &str = "max_timeout_secs";
/// The algorithm setting that caps its calls' wasm fuel.
pub(crate) const MAX_FUEL_SETTING: &str = "max_fuel_per_call";

/// The fuel budget of a call with `timeout` at `fuel_per_sec`: the rate times
/// the timeout (fractions of a second count; saturates at `u64::MAX`).
pub fn fuel_budget(timeout: Duration, fuel_per_sec: u64) -> u64 {
    let fuel = u128::from(fuel_per_sec) * timeout.as_nanos() / 1_000_000_000;
    u64::try_from(fuel).unwrap_or(u64::MAX)
}

/// A call's timeout and wasm fuel budget. The timeout is what the caller
/// asked for (the cluster's `call_timeout` if nothing), cut to the
/// algorithm's `max_timeout_secs` and the cluster's `max_call_timeout`; the
/// fuel is the cluster's `wasm_fuel_per_sec` times that timeout, cut to the
/// algorithm's `max_fuel_per_call`. Caps an algorithm kept from before the
/// cluster lowered its own still never take a call past the cluster's.
pub(super) fn call_limits(
    cluster: &crate::services::Settings,
    algo_settings: &crate::model::AlgorithmSettings,
    asked: Option<Duration>,
) -> (Duration, u64) {
    let mut longest = cluster.max_call_timeout;
    if let Some(secs) = algo_settings.max_timeout_secs {
        longest = longest.min(Duration::from_secs(secs));
    }
    let timeout = asked.unwrap_or(cluster.call_timeout).min(longest);
    let mut fuel = fuel_budget(timeout, cluster.wasm_fuel_per_sec);
    if let Some(most) = algo_settings.max_fuel_per_call {
        fuel = fuel.min(most);
    }
    (timeout, fuel)
}

/// Parses the `timeout` option (seconds, a float above 0); `None` when it is
/// not given. A longer timeout than the call may have is not an error: it is
/// cut to the algorithm's and the cluster's caps (`CallService::call_limits`), as
/// Algorithmia cut it to 3000 s.
pub fn parse_timeout(raw: Option<&str>) -> Result<Option<Duration>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            // Plain decimal seconds (`300`, `0.5`): no sign, exponent,
            // `inf` or `NaN`, so what the message says is what is checked.
            let plain = s.split_once('.').map_or(s, |(whole, _)| whole);
            let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
            let fraction_ok = s.split_once('.').is_none_or(|(_, f)| digits(f));
            match s.parse::<f64>() {
                Ok(t) if digits(plain) && fraction_ok && t > 0.0 && t <= MAX_TIMEOUT_SECS => {
                    Ok(Some(Duration::from_secs_f64(t)))
                }
                _ => Err(Error::invalid(format!(
                    "invalid timeout {s:?}: use a number of seconds above 0 and at most \
                     {MAX_TIMEOUT_SECS} (a timeout above the algorithm's or the cluster's \
                     limit is cut to it)"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(None).unwrap(), None);
        assert_eq!(parse_timeout(Some(" ")).unwrap(), None);
        assert_eq!(
            parse_timeout(Some("1.5")).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_timeout(Some("3000")).unwrap(),
            Some(Duration::from_secs(3000))
        );
        for bad in [
            "0", "-1", "abc", "NaN", "inf", "3001", "3000.5", "1e308", "1e3", "+5", ".5", "5.",
            "0x10",
        ] {
            assert!(parse_timeout(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn fuel_grows_with_the_timeout_and_caps_only_lower_limits() {
        let secs = Duration::from_secs;
        let cluster = crate::services::Settings {
            call_timeout: secs(300),
            max_call_timeout: secs(600),
            wasm_fuel_per_sec: 1000,
            ..Default::default()
        };
        let none = crate::model::AlgorithmSettings::default();
        // No timeout asked: the cluster's default, and fuel for all of it.
        assert_eq!(call_limits(&cluster, &none, None), (secs(300), 300_000));
        // The caller lowers it (and the fuel with it) or raises it up to
        // the cluster's cap, and no further.
        let half = Duration::from_millis(500);
        assert_eq!(call_limits(&cluster, &none, Some(half)), (half, 500));
        assert_eq!(
            call_limits(&cluster, &none, Some(secs(3000))),
            (secs(600), 600_000)
        );
        // The algorithm's caps bind the default and the caller alike.
        let capped = crate::model::AlgorithmSettings {
            max_timeout_secs: Some(10),
            max_fuel_per_call: Some(4000),
            ..Default::default()
        };
        assert_eq!(call_limits(&cluster, &capped, None), (secs(10), 4000));
        assert_eq!(
            call_limits(&cluster, &capped, Some(secs(60))),
            (secs(10), 4000)
        );
        assert_eq!(
            call_limits(&cluster, &capped, Some(secs(2))),
            (secs(2), 2000)
        );
        // A cap above the cluster's (kept from before the cluster lowered
        // its own) does not raise anything.
        let above = crate::model::AlgorithmSettings {
            max_timeout_secs: Some(3000),
            max_fuel_per_call: Some(1 << 60),
            ..Default::default()
        };
        assert_eq!(
            call_limits(&cluster, &above, Some(secs(3000))),
            (secs(600), 600_000)
        );
        assert_eq!(fuel_budget(secs(3000), u64::MAX), u64::MAX);
        assert_eq!(fuel_budget(Duration::from_nanos(1), 1000), 0);
    }
}
