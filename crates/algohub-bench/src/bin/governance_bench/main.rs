//! `governance-bench`: what call governance costs. Prints one table:
//!
//! 1. the in-process call path (policy, version resolution, admission, wasm
//!    echo, metering) with metering off, with durable metering through the
//!    usage journal (as the server runs it; a run ends when the loader has
//!    stored every record, so a loader that falls behind is charged) and with
//!    one store commit per batch, same hub setup, same concurrency, side by
//!    side (goal: metering costs under 10%), and what one `record_usage` batch
//!    costs by batch size;
//! 2. admission alone (take and free a work-limit slot) on one node, and on
//!    PostgreSQL with shared slots under concurrency, beside one PostgreSQL
//!    round trip (goal: under 2 µs locally; under one round trip amortized);
//! 3. report latency over `--records` usage records (default 10 million) in
//!    the rollups: a one-month org report per member, per algorithm and per
//!    day (goal: under 100 ms).
//!
//! ```text
//! CARGO_TARGET_DIR=target-bench cargo run --release -p algohub-bench --bin governance-bench -- \
//!     [--seconds 5] [--concurrency 32] [--records 10000000] [--postgres postgres://postgres@127.0.0.1:5432/test]
//! ```
//!
//! Without `--postgres` (or `ALGOHUB_TEST_DATABASE_URL`) the PostgreSQL rows
//! are skipped. The usage records of part 3 are written through the same
//! `record_usage` batches the server uses (so rollups are built as in
//! service), on SQLite.

/// The server's allocator, so that the call path is measured as it runs.
#[global_allocator]
static ALLOCATOR: algohub::ServerAllocator = algohub::ServerAllocator;

#[path = "../../async_main.rs"]
mod async_main;
use algohub_core::RequestCtx;
use algohub_core::model::{ReportGroup, ReportQuery, ReportSide, UsageRecord, UsageStatus, Via};
use algohub_core::services::{
    CallRequest, ContentKind, CreateUser, ExecInput, Hub, PublishRequest, Settings,
};
use algohub_core::store::Store;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod reports;
use reports::{fill_records, report_ms};

struct Options {
    seconds: u64,
    concurrency: usize,
    records: u64,
    postgres: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        seconds: 5,
        concurrency: 32,
        records: 10_000_000,
        postgres: std::env::var("ALGOHUB_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--seconds" => {
                o.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            "--concurrency" => {
                o.concurrency = value("--concurrency")?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--records" => {
                o.records = value("--records")?
                    .parse()
                    .map_err(|e| format!("--records: {e}"))?
            }
            "--postgres" => o.postgres = Some(value("--postgres")?),
            "--help" | "-h" => {
                println!(
                    "governance-bench [--seconds N] [--concurrency N] [--records N] [--postgres URL]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

type BoxResult<T> = Result<T, String>;

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A hub on `url` (migrated) with a wasm executor; metering on or off, and
/// with metering on, durable in a usage journal under `journal` (as the
/// server does) or committed to the store per batch.
async fn hub_on(url: &str, metering: bool, journal: Option<&Path>) -> BoxResult<Arc<Hub>> {
    let store = algohub_store::connect(url).await.map_err(e2s)?;
    store.migrate().await.map_err(e2s)?;
    let executor =
        algohub::executor::HubExecutor::new(false, &algohub_runtime::RuntimeConfig::default())?;
    let settings = Settings {
        metering,
        usage_journal: journal.map(Path::to_path_buf),
        default_work_limit: 1_000_000,
        ..Settings::default()
    };
    algohub::start_hub(store, settings, Some(Arc::new(executor)), None)
        .await
        .map_err(e2s)
}

/// Creates user `name` with an echo algorithm published publicly; returns the principal.
async fn setup_caller(hub: &Hub, name: &str) -> BoxResult<RequestCtx> {
    hub.accounts
        .create_user_unchecked(
            &algohub_core::audit::AuditContext::cli(),
            CreateUser {
                username: name.into(),
                email: format!("{name}@example.com"),
                full_name: name.into(),
                ..Default::default()
            },
        )
        .await
        .map_err(e2s)?;
    let (_, secret) = hub
        .keys
        .create_user_key_unchecked(name, "bench")
        .await
        .map_err(e2s)?;
    let p = RequestCtx::cli(
        hub.authenticator
            .authenticate_key(secret.expose())
            .map_err(e2s)?,
    );
    let settings = serde_json::json!({"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false, "royalty_microcredits": 1});
    let algo = hub
        .algorithms
        .create_algorithm(
            &p,
            name,
            "echo",
            &serde_json::json!({"label": "Echo"}),
            &settings,
            None,
        )
        .await
        .map_err(e2s)?;
    hub.algorithms.compile(&p, &algo).await.map_err(e2s)?;
    hub.algorithms
        .publish(
            &p,
            &algo,
            PublishRequest {
                version_type: Some("major".into()),
                release_notes: None,
                sample_input: None,
                sample_output: None,
                details: serde_json::json!({}),
                settings: serde_json::json!({"algorithm_callability": "public"}),
            },
        )
        .await
        .map_err(e2s)?;
    Ok(p)
}

/// Calls per second of `owner/echo` from `concurrency` tasks for `seconds`,
/// counting the time until every record is in the store (so a usage journal's
/// loader that falls behind is charged to metering).
async fn call_rate(
    hub: Arc<Hub>,
    p: RequestCtx,
    owner: &str,
    concurrency: usize,
    seconds: u64,
) -> BoxResult<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let hub = hub.clone();
        let p = p.clone();
        let owner = owner.to_string();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let req = CallRequest {
                    owner: owner.clone(),
                    name: "echo".into(),
                    version: None,
                    input: ExecInput {
                        content_type: ContentKind::Text,
                        data: b"hello".to_vec(),
                    },
                    timeout: Some(Duration::from_secs(10)),
                    sudo: false,
                    no_data: false,
                };
                let out = hub.calls.call_algorithm(&p, req).await.map_err(e2s)?;
                out.result.map_err(e2s)?;
                n += 1;
            }
            Ok::<u64, String>(n)
        }));
    }
    let start = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(e2s)??;
    }
    hub.metering.settle_usage().await.map_err(e2s)?;
    Ok(total as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Mean milliseconds per `record_usage` batch of `size` records, and
/// microseconds per record (enough batches for about 20,000 records).
async fn commit_cost(hub: &Hub, size: usize) -> BoxResult<(f64, f64)> {
    let batches = (20_000 / size).clamp(20, 2_000);
    let now = algohub_core::model::now_millis();
    let mut all = Vec::with_capacity(batches);
    for b in 0..batches {
        let batch: Vec<UsageRecord> = (0..size)
            .map(|i| UsageRecord {
                request_id: format!("commit-cost-{size}-{b}-{i}"),
                started_at: now,
                duration_us: 700,
                caller_id: 1,
                acting_as_id: 1,
                payer_id: 1,
                via: Via::Direct,
                algorithm_id: None,
                owner_id: None,
                algo_owner: "bench".into(),
                algo_name: "echo".into(),
                version: "1.0.0".into(),
                status: UsageStatus::Ok,
                error_code: None,
                compute_units: 1_000,
                royalty_microcredits: 0,
            })
            .collect();
        all.push(batch);
    }
    let start = Instant::now();
    for batch in &all {
        hub.store.record_usage(batch).await.map_err(e2s)?;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((
        secs * 1000.0 / batches as f64,
        secs * 1e6 / (batches * size) as f64,
    ))
}

/// Mean nanoseconds of one admission (take + free a slot) from one task.
async fn admission_ns(hub: &Hub, account: i64, n: u64) -> BoxResult<f64> {
    let start = Instant::now();
    for i in 0..n {
        let g = hub
            .admission
            .admit(account, &format!("bench-{i}"))
            .await
            .map_err(e2s)?;
        drop(g);
    }
    Ok(start.elapsed().as_nanos() as f64 / n as f64)
}

/// Admissions per second from `concurrency` tasks (each holds its slot for
/// `hold`), and store transactions per admission.
async fn shared_admission(
    hub: Arc<Hub>,
    account: i64,
    concurrency: usize,
    per_task: u64,
) -> BoxResult<(f64, f64)> {
    let before = hub.admission.transactions();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let hub = hub.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let g = hub
                    .admission
                    .admit(account, &format!("c{t}-{i}-{}", uuid_like()))
                    .await
                    .map_err(e2s)?;
                drop(g);
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(e2s)??;
    }
    let n = (concurrency as u64 * per_task) as f64;
    let secs = start.elapsed().as_secs_f64();
    let tx = (hub.admission.transactions() - before) as f64;
    Ok((secs * 1e6 / n, tx / n))
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Mean microseconds of one `SELECT 1` round trip.
async fn pg_round_trip_us(url: &str) -> BoxResult<f64> {
    let store = algohub_store::connect(url).await.map_err(e2s)?;
    let n = 2000;
    store.ping().await.map_err(e2s)?;
    let start = Instant::now();
    for _ in 0..n {
        store.ping().await.map_err(e2s)?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(n))
}

/// A fresh database on the PostgreSQL server of `admin_url`.
async fn fresh_pg(admin_url: &str) -> BoxResult<String> {
    use sqlx::Connection;
    let name = format!("algohub_bench_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(e2s)?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .map_err(e2s)?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .ok_or("the URL names no database")?;
    Ok(format!("{base}/{name}"))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISSED" }
}

async fn run(o: Options) -> BoxResult<bool> {
    let mut all_ok = true;
    println!(
        "governance-bench: {} s per load, {} concurrent callers, {} usage records",
        o.seconds, o.concurrency, o.records
    );
    println!();
    println!("{:<58} {:>14} {:>10}", "measure", "value", "goal");

    // 1. Metering on (journal, as the server runs; or store commits) vs off,
    // SQLite, same setup.
    let dir = tempfile::tempdir().map_err(e2s)?;
    let url = |name: &str| format!("sqlite:{}", dir.path().join(name).display());
    let journal_dir = dir.path().join("usage-journal");
    let hubs = [
        hub_on(&url("off.db"), false, None).await?,
        hub_on(&url("journal.db"), true, Some(&journal_dir)).await?,
        hub_on(&url("direct.db"), true, None).await?,
    ];
    let mut callers = Vec::new();
    for hub in &hubs {
        let p = setup_caller(hub, "alice").await?;
        // Warm up.
        call_rate(hub.clone(), p.clone(), "alice", o.concurrency, 1).await?;
        callers.push(p);
    }
    // Alternate short runs so noise hits all alike.
    let mut rates = [0.0f64; 3];
    let rounds = 3;
    let each = o.seconds.div_ceil(rounds).max(1);
    for _ in 0..rounds {
        for (i, hub) in hubs.iter().enumerate() {
            rates[i] += call_rate(
                hub.clone(),
                callers[i].clone(),
                "alice",
                o.concurrency,
                each,
            )
            .await?
                / f64::from(rounds as u32);
        }
    }
    let [off, journaled, direct] = rates;
    println!(
        "{:<58} {:>12.0}/s {:>10}",
        "call path, metering off (SQLite)", off, ""
    );
    println!(
        "{:<58} {:>12.0}/s {:>10}",
        "call path, durable metering via the usage journal", journaled, ""
    );
    println!(
        "{:<58} {:>12.0}/s {:>10}",
        "call path, durable metering, one store commit per batch", direct, ""
    );
    let cost = (1.0 - journaled / off) * 100.0;
    let ok = cost < 10.0;
    all_ok &= ok;
    println!(
        "{:<58} {:>13.1}% {:>10}  {}",
        "metering cost (journal, loader caught up)",
        cost,
        "< 10%",
        verdict(ok)
    );
    println!(
        "{:<58} {:>13.1}% {:>10}",
        "  metering cost (store commit per batch)",
        (1.0 - direct / off) * 100.0,
        ""
    );
    let hub_on_ = hubs[2].clone();

    // What one group commit costs on its own, by batch size.
    for size in [1usize, 32, 1000] {
        let (per_batch_ms, per_record_us) = commit_cost(&hub_on_, size).await?;
        println!(
            "{:<58} {:>12.3}ms {:>10}",
            format!("  record_usage, batch of {size} ({per_record_us:.1} µs per record)"),
            per_batch_ms,
            ""
        );
    }

    // 2. Admission on one node (in memory).
    let account = hub_on_
        .store
        .get_account_by_name("alice")
        .await
        .map_err(e2s)?
        .id;
    admission_ns(&hub_on_, account, 10_000).await?;
    let local = admission_ns(&hub_on_, account, 200_000).await? / 1000.0;
    let ok = local < 2.0;
    all_ok &= ok;
    println!(
        "{:<58} {:>12.3}µs {:>10}  {}",
        "admission, one node (take + free a slot)",
        local,
        "< 2 µs",
        verdict(ok)
    );

    // ... and with slots shared in PostgreSQL.
    if let Some(admin) = &o.postgres {
        let url = fresh_pg(admin).await?;
        let hub = hub_on(&url, false, None).await?;
        setup_caller(&hub, "alice").await?;
        let account = hub
            .store
            .get_account_by_name("alice")
            .await
            .map_err(e2s)?
            .id;
        let rt = pg_round_trip_us(&url).await?;
        let single = admission_ns(&hub, account, 300).await? / 1000.0;
        let (amortized, tx_per) =
            shared_admission(hub.clone(), account, o.concurrency, 300).await?;
        println!(
            "{:<58} {:>12.1}µs {:>10}",
            "PostgreSQL round trip (SELECT 1)", rt, ""
        );
        println!(
            "{:<58} {:>12.1}µs {:>10}",
            "admission, shared slots, one caller at a time", single, ""
        );
        let ok = amortized < rt;
        all_ok &= ok;
        println!(
            "{:<58} {:>12.1}µs {:>10}  {}",
            format!(
                "admission, shared slots, {} concurrent (per call)",
                o.concurrency
            ),
            amortized,
            "< 1 trip",
            verdict(ok)
        );
        println!(
            "{:<58} {:>14.3} {:>10}",
            "  store transactions per admission (acquire + release)", tx_per, ""
        );
    } else {
        println!(
            "{:<58} {:>14} {:>10}",
            "admission, shared slots (PostgreSQL)", "skipped", "--postgres"
        );
    }

    // 3. Reports over the rollups of `records` usage records.
    let rdir = tempfile::tempdir().map_err(e2s)?;
    let rurl = format!("sqlite:{}", rdir.path().join("reports.db").display());
    let rhub = hub_on(&rurl, false, None).await?;
    let (fill_s, org) = fill_records(&rhub, o.records).await?;
    println!(
        "{:<58} {:>12.0}/s {:>10}",
        format!(
            "writing {} usage records with rollups (batches of 1000)",
            o.records
        ),
        o.records as f64 / fill_s,
        ""
    );
    let today = algohub_core::model::day_of(algohub_core::model::now_millis());
    for (label, group) in [
        ("member", ReportGroup::Member),
        ("algorithm", ReportGroup::Algorithm),
        ("day", ReportGroup::Day),
    ] {
        let q = ReportQuery {
            side: ReportSide::Payer,
            account_id: org,
            from_day: today - 31,
            to_day: today - 1,
            group,
            callers: Vec::new(),
        };
        let (p50, max, rows) = report_ms(&rhub.store, &q, 15).await?;
        let ok = p50 < 100.0;
        all_ok &= ok;
        println!(
            "{:<58} {:>12.1}ms {:>10}  {} (max {max:.1} ms, {rows} rows)",
            format!("one-month org report by {label} (p50)"),
            p50,
            "< 100 ms",
            verdict(ok)
        );
    }
    Ok(all_ok)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("governance-bench: {e}");
            return ExitCode::from(2);
        }
    };
    async_main::block_on("governance-bench", run(o))
}
