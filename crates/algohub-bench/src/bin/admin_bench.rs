//! `admin-bench`: the account export of the Users page (`algohub export users
//! --csv` and `GET /v1/admin/users/export` share the code) over a generated
//! directory of `--accounts` users (default 1 million) on SQLite. Prints rows
//! per second and the peak extra memory while exporting, beside the goals
//! (over 2 million rows/s; under 50 MB of extra memory).
//!
//! ```text
//! CARGO_TARGET_DIR=target-bench cargo run --release -p algohub-bench --bin admin-bench -- [--accounts 1000000]
//! ```
//!
//! Peak memory is the process's high-water mark (`VmHWM`), reset just before
//! the export (`/proc/self/clear_refs`), minus the resident size then.

#[path = "../async_main.rs"]
mod async_main;
use algohub_core::services::{Hub, Settings};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

fn kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Exports measured; the median rate is reported.
const RUNS: usize = 3;

async fn run(accounts: u64) -> Result<bool, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let dir = tempfile::tempdir().map_err(|x| e(&x))?;
    let url = format!("sqlite:{}", dir.path().join("admin.db").display());
    let store = algohub_store::connect(&url).await.map_err(|x| e(&x))?;
    store.migrate().await.map_err(|x| e(&x))?;
    // A generated directory, written in bulk (one statement per table).
    let t = Instant::now();
    let generate = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {accounts}) \
         INSERT INTO accounts (uuid, kind, name, status, created_at, updated_at) \
         SELECT printf('00000000-0000-4000-8000-%012d', i), 'user', printf('user%07d', i), 'active', 1700000000000 + i, 1700000000000 + i FROM n"
    );
    sqlx::query(sqlx::AssertSqlSafe(generate))
        .execute(store.pool())
        .await
        .map_err(|x| e(&x))?;
    sqlx::query(
        "INSERT INTO users (account_id, email, full_name, work_limit) \
         SELECT id, name || '@example.com', 'User ' || name, CASE WHEN id % 10 = 0 THEN 5 ELSE NULL END \
         FROM accounts WHERE kind = 'user'",
    )
    .execute(store.pool())
    .await
    .map_err(|x| e(&x))?;
    println!(
        "admin-bench: {accounts} accounts generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let hub = Hub::start(store, Settings::default())
        .await
        .map_err(|x| e(&x))?;

    // The export, exactly as `algohub export users --csv` runs it, into a
    // sink; three times (the machine is shared), the median rate reported.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let base = kib("VmRSS:").unwrap_or(0);
    let mut rates = Vec::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    for _ in 0..RUNS {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
        let t = Instant::now();
        bytes = 0;
        let mut export = hub
            .admin
            .export_users_csv_cli()
            .await
            .map_err(|e| e.to_string())?;
        while let Some(chunk) = export.chunks.recv().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            out.write_all(&chunk).map_err(|x| e(&x))?;
        }
        rows = export.rows.await.map_err(|x| e(&x))?;
        out.flush().map_err(|x| e(&x))?;
        rates.push(rows as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let rate = rates[RUNS / 2];
    let peak = kib("VmHWM:").unwrap_or(0);
    let extra_mb = peak.saturating_sub(base) as f64 / 1024.0;
    println!();
    println!("{:<44} {:>14} {:>12}", "measure", "value", "goal");
    println!("{:<44} {:>14} {:>12}", "accounts exported", rows, "");
    println!(
        "{:<44} {:>12.1}MB {:>12}",
        "CSV written",
        bytes as f64 / 1e6,
        ""
    );
    let ok_rate = rate > 2_000_000.0;
    let ok_mem = extra_mb < 50.0;
    println!(
        "{:<44} {:>12.0}/s {:>12}  {}",
        "export rate (SQLite, median of 3 runs)",
        rate,
        "> 2 M/s",
        if ok_rate { "PASS" } else { "MISSED" }
    );
    println!(
        "{:<44} {:>12.1}MB {:>12}  {}",
        "peak extra memory while exporting",
        extra_mb,
        "< 50 MB",
        if ok_mem { "PASS" } else { "MISSED" }
    );
    Ok(rows == accounts && ok_rate && ok_mem)
}

fn main() -> ExitCode {
    let mut accounts = 1_000_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--accounts", Some(n)) => match n.parse() {
                Ok(n) => accounts = n,
                Err(e) => {
                    eprintln!("admin-bench: --accounts: {e}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: admin-bench [--accounts N]");
                return ExitCode::from(2);
            }
        }
    }
    async_main::block_on("admin-bench", run(accounts))
}
