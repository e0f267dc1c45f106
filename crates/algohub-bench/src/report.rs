//! Formatting: durations, sizes and rates for people, and the markdown table.

use std::fmt::Write as _;
use std::time::Duration;

pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    nanos(ns)
}

pub fn nanos(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

pub fn bytes(b: i64) -> String {
    let x = b as f64;
    if x.abs() < 1024.0 * 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else if x.abs() < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", x / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", x / (1024.0 * 1024.0 * 1024.0))
    }
}

pub fn rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} /s")
    }
}

pub fn count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One engine's line in a scale's table.
pub struct Row {
    pub engine: String,
    pub build: String,
    pub memory: String,
    /// Decisions per second, p50 ns, p99 ns (`None`: not run).
    pub measured: Option<(f64, u32, u32)>,
    pub agreed: String,
}

impl Row {
    pub fn skipped(engine: &str, why: &str) -> Self {
        Row {
            engine: engine.into(),
            build: "skipped".into(),
            memory: "–".into(),
            measured: None,
            agreed: why.into(),
        }
    }
}

/// The markdown table; the ratio column is our decisions/s over the engine's.
pub fn table(rows: &[Row], ours_per_s: f64) -> String {
    let mut out = String::new();
    out.push_str("| engine | build time | memory | decisions/s | p50 | p99 | ours ÷ engine (decisions/s) | agreed |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let (dps, p50, p99, ratio) = match r.measured {
            Some((dps, p50, p99)) => (
                rate(dps),
                nanos(p50 as f64),
                nanos(p99 as f64),
                format!("{:.2}x", ours_per_s / dps),
            ),
            None => ("skipped".into(), "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.engine, r.build, r.memory, dps, p50, p99, ratio, r.agreed
        );
    }
    out
}

pub fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}
