//! Calls counted per algorithm: `algohub_calls_total{algorithm, outcome}`
//! (`ok`, `error`: the run failed, `refused`: it never ran),
//! `algohub_call_errors_total{algorithm, error_type}` (the run's error type
//! or the refusal's reason) and `algohub_call_duration_seconds{algorithm}`
//! (calls that ran, from the request to the end of the run).
//!
//! Labels stay bounded: `algorithm` is `owner/name` of an algorithm the call
//! resolved to (a refusal before that, e.g. an unknown name, counts under
//! `algorithm=""`, so no request text becomes a label), and `error_type` is
//! one of a fixed set (an algorithm's own error type is its choice, so it
//! counts as `AlgorithmError` unless it is one the platform sets).
//!
//! Cost: the handles of an algorithm live with its call-cache entry and are
//! registered on first use, so a call increments a counter and records a
//! sample without a registry look-up or an allocation.

use super::super::executor::ExecError;
use crate::error::Code;
use metrics::{Counter, Histogram, SharedString};
use parking_lot::Mutex;
use smallvec::SmallVec;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One algorithm's call metrics (or those of refusals that named none).
pub(crate) struct CallMetrics {
    /// `owner/name`, or empty.
    algorithm: SharedString,
    ok: OnceLock<Counter>,
    error: OnceLock<Counter>,
    refused: OnceLock<Counter>,
    duration: OnceLock<Histogram>,
    /// `algohub_call_errors_total` by error type, registered as they occur
    /// (a handful per algorithm at most).
    errors: Mutex<SmallVec<[(&'static str, Counter); 4]>>,
}

impl CallMetrics {
    /// The metrics of calls to `owner/name`.
    pub(crate) fn algorithm(owner: &str, name: &str) -> Self {
        let label: Arc<str> = format!("{owner}/{name}").into();
        Self::labelled(SharedString::from_shared(label))
    }

    /// The metrics of calls refused before they resolved to an algorithm.
    pub(crate) fn unresolved() -> Self {
        Self::labelled(SharedString::const_str(""))
    }

    fn labelled(algorithm: SharedString) -> Self {
        Self {
            algorithm,
            ok: OnceLock::new(),
            error: OnceLock::new(),
            refused: OnceLock::new(),
            duration: OnceLock::new(),
            errors: Mutex::new(SmallVec::new()),
        }
    }

    fn count_call(&self, cell: &OnceLock<Counter>, outcome: &'static str) {
        cell.get_or_init(|| {
            metrics::counter!("algohub_calls_total", "algorithm" => self.algorithm.clone(), "outcome" => outcome)
        })
        .increment(1);
    }

    fn count_error(&self, error_type: &'static str) {
        let mut errors = self.errors.lock();
        if let Some((_, c)) = errors.iter().find(|(t, _)| *t == error_type) {
            c.increment(1);
            return;
        }
        let c = metrics::counter!("algohub_call_errors_total", "algorithm" => self.algorithm.clone(), "error_type" => error_type);
        c.increment(1);
        errors.push((error_type, c));
    }

    fn record_duration(&self, took: Duration) {
        self.duration
            .get_or_init(|| {
                metrics::histogram!("algohub_call_duration_seconds", "algorithm" => self.algorithm.clone())
            })
            .record(took.as_secs_f64());
    }

    /// A call that ran: its outcome and how long it took.
    pub(crate) fn ran<T>(&self, result: &Result<T, ExecError>, took: Duration) {
        match result {
            Ok(_) => self.count_call(&self.ok, "ok"),
            Err(e) => {
                self.count_call(&self.error, "error");
                self.count_error(error_type(e));
            }
        }
        self.record_duration(took);
    }

    /// A call refused before it ran, with the refusal's code.
    pub(crate) fn refused(&self, code: Code) {
        self.count_call(&self.refused, "refused");
        self.count_error(code.slug());
    }

    /// A call whose client went away while it ran (metered as `cancelled`).
    pub(crate) fn cancelled(&self) {
        self.count_call(&self.error, "error");
        self.count_error("cancelled");
    }
}

/// The `error_type` label of a failed run: the v1 error object's type, with
/// an algorithm's own types (its choice, unbounded) as `AlgorithmError`.
pub(crate) fn error_type(e: &ExecError) -> &'static str {
    match e {
        ExecError::Algorithm { error_type, .. } => match error_type.as_str() {
            // Set by the platform on the algorithm's behalf.
            "UpstreamError" => "UpstreamError",
            "OutputLimitExceeded" => "OutputLimitExceeded",
            _ => "AlgorithmError",
        },
        ExecError::Timeout { .. } => "AlgorithmTimeoutError",
        ExecError::ResourceLimit { .. } | ExecError::NodeMemory { .. } => "ResourceLimitError",
        ExecError::Crash { .. } => "AlgorithmCrashError",
        ExecError::Upstream(_) => "UpstreamError",
        ExecError::Internal(_) => "InternalError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_a_fixed_set_matching_the_error_object() {
        let algorithm = |t: &str| ExecError::Algorithm {
            message: "m".into(),
            error_type: t.into(),
            stacktrace: String::new(),
            stdout: String::new(),
            compute_units: 0,
        };
        for (e, want) in [
            (algorithm("ValueError"), "AlgorithmError"),
            (algorithm("AlgorithmError"), "AlgorithmError"),
            (algorithm("UpstreamError"), "UpstreamError"),
            (algorithm("OutputLimitExceeded"), "OutputLimitExceeded"),
            (
                ExecError::Timeout {
                    after: Duration::from_secs(1),
                    compute_units: 0,
                },
                "AlgorithmTimeoutError",
            ),
            (
                ExecError::ResourceLimit {
                    message: "fuel".into(),
                    compute_units: 0,
                },
                "ResourceLimitError",
            ),
            (
                ExecError::Crash {
                    message: "trap".into(),
                    compute_units: 0,
                },
                "AlgorithmCrashError",
            ),
            (ExecError::Upstream("down".into()), "UpstreamError"),
            (ExecError::Internal("bug".into()), "InternalError"),
        ] {
            assert_eq!(error_type(&e), want, "{e:?}");
            // The platform's own types are what the error object says.
            if !matches!(e, ExecError::Algorithm { .. }) {
                assert_eq!(e.describe().1, want);
            }
        }
    }
}
