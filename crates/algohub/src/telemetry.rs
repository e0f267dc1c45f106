//! What `/metrics` shows: every metric the workspace records, described once
//! at start-up, and the Prometheus recorder's histogram buckets (latencies
//! are histograms, which add up across nodes, not summaries).

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Bucket bounds (seconds) of every latency: 0.5 ms to 60 s for requests,
/// and on to 300 s, the default call timeout (a call's request lasts as long
/// as the call; longer calls count in `+Inf`, and in `_sum` and `_count`).
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

/// Bucket bounds of `algohub_metering_batch_size` (records; at most 1000).
pub const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric recorded anywhere in the workspace: (name, kind, unit,
/// description). A test checks that each `counter!`/`gauge!`/`histogram!`
/// in the sources is listed here.
pub const METRICS: &[(&str, Kind, Unit, &str)] = &[
    (
        "algohub_http_requests_total",
        Kind::Counter,
        Unit::Count,
        "HTTP requests answered, by method, route (the matched template) and status",
    ),
    (
        "algohub_http_request_duration_seconds",
        Kind::Histogram,
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route",
    ),
    (
        "algohub_calls_total",
        Kind::Counter,
        Unit::Count,
        "Algorithm calls by algorithm (owner/name; empty for a refusal before the call named one) and outcome: ok, error (the run failed) or refused (it never ran)",
    ),
    (
        "algohub_call_errors_total",
        Kind::Counter,
        Unit::Count,
        "Failed and refused algorithm calls by algorithm and error type: the run's (AlgorithmError, AlgorithmTimeoutError, ResourceLimitError, AlgorithmCrashError, UpstreamError, OutputLimitExceeded, InternalError, cancelled) or the refusal's reason (limit_exceeded, algorithm_not_found, ...)",
    ),
    (
        "algohub_call_duration_seconds",
        Kind::Histogram,
        Unit::Seconds,
        "Duration of the algorithm calls that ran, from the request to the end of the run, by algorithm",
    ),
    (
        "algohub_policy_decisions_total",
        Kind::Counter,
        Unit::Count,
        "Authorization decisions of the policy engine, by outcome (allow, deny)",
    ),
    (
        "algohub_policy_index_users",
        Kind::Gauge,
        Unit::Count,
        "Accounts in this node's policy index (set when /metrics is read)",
    ),
    (
        "algohub_policy_index_keys",
        Kind::Gauge,
        Unit::Count,
        "API keys in this node's policy index (set when /metrics is read)",
    ),
    (
        "algohub_policy_seq",
        Kind::Gauge,
        Unit::Count,
        "Sequence number of the newest policy change this node has applied (set when /metrics is read)",
    ),
    (
        "algohub_store_errors_total",
        Kind::Counter,
        Unit::Count,
        "Database errors: failed queries, readiness checks and background store work",
    ),
    (
        "algohub_metering_errors_total",
        Kind::Counter,
        Unit::Count,
        "Usage-record batches that could not be written or loaded (retried, or withheld from the caller)",
    ),
    (
        "algohub_metering_batch_size",
        Kind::Histogram,
        Unit::Count,
        "Usage records per group commit of the metering writer",
    ),
    (
        "algohub_audit_denied_dropped_total",
        Kind::Counter,
        Unit::Count,
        "Audit records of refused admin requests dropped over the rate budget",
    ),
    (
        "algohub_emails_total",
        Kind::Counter,
        Unit::Count,
        "Invitation emails by outcome: sent, refused (by the mail server, for good) or retry",
    ),
];

/// The recorder's configuration: histograms with `LATENCY_BUCKETS` for every
/// duration, `BATCH_BUCKETS` for the metering batch size.
pub fn builder() -> Result<PrometheusBuilder, String> {
    let bad = |e: metrics_exporter_prometheus::BuildError| format!("metrics buckets: {e}");
    PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .map_err(bad)?
        .set_buckets_for_metric(
            Matcher::Full("algohub_metering_batch_size".into()),
            &BATCH_BUCKETS,
        )
        .map_err(bad)
}

/// Describes every metric in `METRICS` to the installed recorder (`# HELP`).
pub fn describe() {
    for &(name, kind, unit, description) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, unit, description),
            Kind::Gauge => metrics::describe_gauge!(name, unit, description),
            Kind::Histogram => metrics::describe_histogram!(name, unit, description),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// (name, kind) of every metric macro call in the `.rs` files under `dir`.
    fn recorded(dir: &Path, out: &mut Vec<(String, Kind, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                recorded(&path, out);
                continue;
            }
            // This file names the macros in its own strings.
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("src/telemetry.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (macro_name, kind) in [
                ("counter!(", Kind::Counter),
                ("gauge!(", Kind::Gauge),
                ("histogram!(", Kind::Histogram),
            ] {
                for (at, _) in text.match_indices(macro_name) {
                    if text[..at].ends_with("describe_") {
                        continue;
                    }
                    let rest = text[at + macro_name.len()..].trim_start();
                    let excerpt: String = text[at..].chars().take(60).collect();
                    let where_ = format!("{}: {excerpt}", path.display());
                    let name = rest
                        .strip_prefix('"')
                        .and_then(|r| r.split_once('"'))
                        .map(|(name, _)| name.to_string())
                        .unwrap_or_else(|| panic!("a metric's name is a literal: {where_}"));
                    out.push((name, kind, where_));
                }
            }
        }
    }

    #[test]
    fn every_recorded_metric_is_described_and_every_duration_is_a_histogram() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&crates).unwrap() {
            let src = entry.unwrap().path().join("src");
            if src.is_dir() {
                recorded(&src, &mut found);
            }
        }
        assert!(
            found.iter().any(|(n, _, _)| n == "algohub_calls_total"),
            "the scan found the call metrics: {found:?}"
        );
        for (name, kind, where_) in &found {
            let listed = METRICS.iter().find(|(n, _, _, _)| n == name);
            assert!(
                listed.is_some_and(|&(_, k, _, d)| k == *kind && !d.is_empty()),
                "{name} ({kind:?}, {where_}) is listed in METRICS with its kind"
            );
        }
        for (name, kind, unit, _) in METRICS {
            assert!(
                found.iter().any(|(n, _, _)| n == name),
                "{name} in METRICS is recorded somewhere"
            );
            if *unit == Unit::Seconds {
                assert_eq!(*kind, Kind::Histogram, "{name}");
                assert!(name.ends_with("_seconds"), "{name}");
            }
        }
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(LATENCY_BUCKETS[0], 0.0005);
        assert_eq!(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1], 300.0);
        assert!(BATCH_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
