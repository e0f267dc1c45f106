//! Part 3 of governance-bench: usage records written through the server's
//! `record_usage` batches (so rollups are built as in service), and report
//! latency over them.

use super::{BoxResult, e2s};
use algohub_core::RequestCtx;
use algohub_core::model::{ReportQuery, UsageRecord, UsageStatus, Via};
use algohub_core::policy::Principal;
use algohub_core::services::{CreateUser, Hub};
use algohub_core::store::Store;
use std::sync::Arc;
use std::time::Instant;

/// Writes `n` usage records over 90 days for 2,000 users (the first 40 are
/// members of org `acme`, which pays for their calls) calling 500
/// algorithms of 100 owners (5 algorithms per user), in batches of 1,000
/// through `record_usage`. Returns (seconds, the org's id).
pub async fn fill_records(hub: &Hub, n: u64) -> BoxResult<(f64, i64)> {
    let mut users = Vec::with_capacity(2000);
    for i in 0..2000 {
        let u = hub
            .accounts
            .create_user_unchecked(
                &algohub_core::audit::AuditContext::cli(),
                CreateUser {
                    username: format!("u{i}"),
                    email: format!("u{i}@example.com"),
                    full_name: format!("User {i}"),
                    ..Default::default()
                },
            )
            .await
            .map_err(e2s)?;
        users.push(u.id);
    }
    let owner = RequestCtx::cli(Principal::user(users[0]));
    let org = hub
        .orgs
        .create_org(
            &owner,
            algohub_core::services::CreateOrg {
                name: "acme".into(),
                label: "Acme".into(),
                contact_name: "Ops".into(),
                email: "ops@acme.test".into(),
                url: None,
                type_id: "basic".into(),
            },
        )
        .await
        .map_err(e2s)?;
    let settings = serde_json::json!({"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false});
    let mut algos = Vec::with_capacity(500);
    for i in 0..500 {
        let owner_id = users[i % 100];
        let a = hub
            .algorithms
            .create_algorithm(
                &RequestCtx::cli(Principal::user(owner_id)),
                &format!("u{}", i % 100),
                &format!("model{i}"),
                &serde_json::json!({"label": "M"}),
                &settings,
                None,
            )
            .await
            .map_err(e2s)?;
        algos.push((a.id, owner_id));
    }
    let day_ms = 86_400_000i64;
    let start_ms = (algohub_core::model::now_millis() / day_ms - 90) * day_ms;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for i in 0..n {
        let u = next(2000) as usize;
        let payer = if u < 40 { org.id } else { users[u] };
        let (algo, owner_id) = algos[(u * 5 + next(5) as usize) % 500];
        batch.push(UsageRecord {
            request_id: format!("r{i}"),
            started_at: start_ms + (i as i64 * 90 * day_ms) / n.max(1) as i64,
            duration_us: 500 + next(5000) as i64,
            caller_id: users[u],
            acting_as_id: users[u],
            payer_id: payer,
            via: Via::Direct,
            algorithm_id: Some(algo),
            owner_id: Some(owner_id),
            algo_owner: String::new(),
            algo_name: String::new(),
            version: format!("1.{}.0", algo % 3),
            status: if next(50) == 0 {
                UsageStatus::Error
            } else {
                UsageStatus::Ok
            },
            error_code: None,
            compute_units: 1_000,
            royalty_microcredits: 0,
        });
        if batch.len() == 1000 {
            hub.store.record_usage(&batch).await.map_err(e2s)?;
            batch.clear();
        }
    }
    hub.store.record_usage(&batch).await.map_err(e2s)?;
    Ok((started.elapsed().as_secs_f64(), org.id))
}

/// p50 and max milliseconds of `runs` report queries.
pub async fn report_ms(
    store: &Arc<dyn Store>,
    q: &ReportQuery,
    runs: usize,
) -> BoxResult<(f64, f64, usize)> {
    let mut times = Vec::with_capacity(runs);
    let mut rows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        rows = store.usage_report(q).await.map_err(e2s)?.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[times.len() - 1], rows))
}
