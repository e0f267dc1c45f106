//! Writing usage records: how a batch becomes rows (shared by both writers),
//! and the pool's writer (PostgreSQL; SQLite in memory). A SQLite file has
//! its own writer (`usage_sqlite.rs`).
//!
//! Design choices:
//! - One transaction inserts a batch's records (`ON CONFLICT DO NOTHING`, so a
//!   retried batch never counts twice), adds the newly inserted ones to the
//!   daily rollups and posts their royalties, so rollups and ledger always
//!   match the records.
//! - Through the pool, a batch travels as one JSON array per statement (one
//!   bind instead of one per value), which keeps large batches to a handful
//!   of round trips.

use crate::db::{col, db_err};
use crate::{Dialect, SqlStore};
use algohub_core::model::*;
use algohub_core::store::{StoreError, StoreResult};
use rustc_hash::FxHashMap;
use sqlx::AssertSqlSafe;

pub(crate) const USAGE_COLUMNS: &str = "request_id, started_at, duration_us, caller_id, acting_as_id, payer_id, via, \
     algorithm_id, owner_id, algo_owner, algo_name, version, status, error_code, compute_units, royalty_microcredits";

/// Adds rollup rows: 14 values per row in `rollups`' key-then-totals order.
pub(crate) const ROLLUP_INSERT: &str = "INSERT INTO usage_daily (day, payer_id, caller_id, \
     algorithm_id, version, via, owner_id, calls, errors, refused, compute_units, duration_us, \
     error_duration_us, credits)";
/// ... adding to a row that exists.
pub(crate) const ROLLUP_CONFLICT: &str = "ON CONFLICT (day, payer_id, caller_id, algorithm_id, \
     version, via) DO UPDATE SET calls = usage_daily.calls + excluded.calls, \
     errors = usage_daily.errors + excluded.errors, refused = usage_daily.refused + excluded.refused, \
     compute_units = usage_daily.compute_units + excluded.compute_units, \
     duration_us = usage_daily.duration_us + excluded.duration_us, \
     error_duration_us = usage_daily.error_duration_us + excluded.error_duration_us, \
     credits = usage_daily.credits + excluded.credits";
/// Adds ledger postings: (request id, account, kind, amount, at).
pub(crate) const LEDGER_INSERT: &str =
    "INSERT INTO ledger_entries (request_id, account_id, kind, amount_microcredits, at)";

/// `SELECT <columns> FROM <the rows of JSON parameter $1>`: the batch travels
/// as one JSON array of positional rows (one bind instead of one per value,
/// which is what makes large batches cheap). `types` has one letter per
/// column: `I` integer, `T` text.
fn json_select(dialect: Dialect, types: &str) -> String {
    let cols: Vec<String> = types
        .chars()
        .enumerate()
        .map(|(i, t)| match (dialect, t) {
            (Dialect::Sqlite, _) => format!("json_extract(value, '$[{i}]')"),
            (Dialect::Postgres, 'I') => format!("(r->>{i})::bigint"),
            (Dialect::Postgres, _) => format!("r->>{i}"),
        })
        .collect();
    match dialect {
        Dialect::Sqlite => format!("SELECT {} FROM jsonb_each($1) WHERE true", cols.join(", ")),
        Dialect::Postgres => format!(
            "SELECT {} FROM jsonb_array_elements($1::jsonb) AS r",
            cols.join(", ")
        ),
    }
}

/// Inserts records not stored yet; returns how many rows were added.
async fn insert_records(
    tx: &mut crate::db::WriteTx<'_>,
    dialect: Dialect,
    records: &[&UsageRecord],
) -> StoreResult<u64> {
    if records.is_empty() {
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::json!(r.columns()))
        .collect();
    let sql = format!(
        "INSERT INTO usage_records ({USAGE_COLUMNS}) {} ON CONFLICT (request_id) DO NOTHING",
        json_select(dialect, "TIIIIITIITTTTTII")
    );
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

/// Which of these records' request ids are stored already.
async fn stored_request_ids(
    tx: &mut crate::db::WriteTx<'_>,
    dialect: Dialect,
    records: &[&UsageRecord],
) -> StoreResult<rustc_hash::FxHashSet<String>> {
    let ids: Vec<&str> = records.iter().map(|r| r.request_id.as_str()).collect();
    let sql = match dialect {
        Dialect::Sqlite => {
            "SELECT request_id FROM usage_records WHERE request_id IN (SELECT value FROM json_each($1))"
        }
        Dialect::Postgres => {
            "SELECT request_id FROM usage_records WHERE request_id IN \
             (SELECT jsonb_array_elements_text($1::jsonb))"
        }
    };
    let rows = sqlx::query(sql)
        .bind(serde_json::json!(ids).to_string())
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| col::<String>(r, "request_id"))
        .collect()
}

/// A daily rollup row's key: (day, payer, caller, algorithm, version, via).
pub(crate) type RollupKey<'a> = (i64, i64, i64, i64, &'a str, &'a str);

/// The rollup rows newly stored records add to, in key order, so concurrent
/// batches (several nodes) lock rollup rows in the same order and cannot
/// deadlock. Counters saturate; credits are money and checked: a batch
/// whose credits would overflow is refused whole rather than stored wrong
/// (prices are capped by `max_royalty_microcredits`, so it takes billions of
/// calls in one batch).
pub(crate) fn rollups<'a>(
    inserted: &[&'a UsageRecord],
) -> StoreResult<Vec<(RollupKey<'a>, Totals)>> {
    let mut rollup: FxHashMap<RollupKey<'a>, Totals> = FxHashMap::default();
    for r in inserted {
        let key = (
            day_of(r.started_at),
            r.payer_id,
            r.caller_id,
            r.algorithm_id.unwrap_or(0),
            r.version.as_str(),
            r.via.as_str(),
        );
        let t = rollup.entry(key).or_default();
        t.owner_id = r.owner_id.unwrap_or(0);
        match r.status {
            UsageStatus::Ok => t.calls += 1,
            UsageStatus::Error => {
                t.calls += 1;
                t.errors += 1;
                t.error_duration_us = t.error_duration_us.saturating_add(r.duration_us);
            }
            UsageStatus::Refused | UsageStatus::Limited => t.refused += 1,
        }
        t.compute_units = t.compute_units.saturating_add(r.compute_units);
        t.duration_us = t.duration_us.saturating_add(r.duration_us);
        if charged(r) {
            t.credits = t
                .credits
                .checked_add(r.royalty_microcredits)
                .ok_or_else(|| {
                    StoreError::Other(format!(
                        "the credits of calls to algorithm {} on day {} overflow 64 bits",
                        key.3, key.0
                    ))
                })?;
        }
    }
    let mut rows: Vec<_> = rollup.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(rows)
}

/// The ledger postings of newly stored records: a debit from the payer and a
/// credit to the owner per charged call, as (request id, account, kind, amount).
pub(crate) fn postings<'a>(
    inserted: &[&'a UsageRecord],
) -> impl Iterator<Item = (&'a str, i64, &'static str, i64)> {
    inserted.iter().filter(|r| charged(r)).flat_map(|r| {
        let owner = r.owner_id.unwrap_or_default();
        [
            (
                r.request_id.as_str(),
                r.payer_id,
                "royalty_debit",
                -r.royalty_microcredits,
            ),
            (
                r.request_id.as_str(),
                owner,
                "royalty_credit",
                r.royalty_microcredits,
            ),
        ]
    })
}

/// What one record adds to its daily rollup row.
#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) owner_id: i64,
    pub(crate) calls: i64,
    pub(crate) errors: i64,
    pub(crate) refused: i64,
    pub(crate) compute_units: i64,
    pub(crate) duration_us: i64,
    pub(crate) error_duration_us: i64,
    pub(crate) credits: i64,
}

/// Whether a record moves royalties: a successful, non-sudo call of another
/// account's algorithm with a royalty.
fn charged(r: &UsageRecord) -> bool {
    r.status == UsageStatus::Ok
        && r.via != Via::Sudo
        && r.royalty_microcredits > 0
        && r.owner_id.is_some_and(|o| o != r.payer_id)
}

impl SqlStore {
    /// `record_usage` through the pool (PostgreSQL, in-memory SQLite).
    pub(crate) async fn record_usage_pool(&self, records: &[UsageRecord]) -> StoreResult<()> {
        let all: Vec<&UsageRecord> = records.iter().collect();
        let mut tx = self.write_unaudited().await?;
        let added = insert_records(&mut tx, self.dialect(), &all).await?;
        let inserted = if added == all.len() as u64 {
            all
        } else {
            // Some were stored before (a retried batch): start over, inserting
            // only the ones not stored yet, so nothing counts twice.
            drop(tx);
            tx = self.write_unaudited().await?;
            let stored = stored_request_ids(&mut tx, self.dialect(), &all).await?;
            let fresh: Vec<&UsageRecord> = all
                .into_iter()
                .filter(|r| !stored.contains(r.request_id.as_str()))
                .collect();
            let added = insert_records(&mut tx, self.dialect(), &fresh).await?;
            if added != fresh.len() as u64 {
                return Err(StoreError::Other(
                    "usage records were written concurrently; retry the batch".into(),
                ));
            }
            fresh
        };
        let rows = rollups(&inserted)?;
        if !rows.is_empty() {
            let json_rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|((day, payer, caller, algo, version, via), t)| {
                    serde_json::json!([
                        day,
                        payer,
                        caller,
                        algo,
                        version,
                        via,
                        t.owner_id,
                        t.calls,
                        t.errors,
                        t.refused,
                        t.compute_units,
                        t.duration_us,
                        t.error_duration_us,
                        t.credits
                    ])
                })
                .collect();
            let sql = format!(
                "{ROLLUP_INSERT} {} {ROLLUP_CONFLICT}",
                json_select(self.dialect(), "IIIITTIIIIIIII")
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(serde_json::Value::Array(json_rows).to_string())
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
        }
        // Royalties: a debit from the payer and a credit to the owner per call.
        let now = now_millis();
        let postings: Vec<serde_json::Value> = postings(&inserted)
            .map(|(request_id, account, kind, amount)| {
                serde_json::json!([request_id, account, kind, amount, now])
            })
            .collect();
        if !postings.is_empty() {
            let sql = format!("{LEDGER_INSERT} {}", json_select(self.dialect(), "TITII"));
            sqlx::query(AssertSqlSafe(sql))
                .bind(serde_json::Value::Array(postings).to_string())
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map(drop)
    }
}
