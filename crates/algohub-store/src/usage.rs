//! `UsageStore`: concurrency slots, usage records, daily rollups, the ledger.
//!
//! Design choices:
//! - Slots are rows (one per running call) so that the limit holds across every
//!   node on one database. A batch of requests is decided in one transaction:
//!   on PostgreSQL each account's requests first take a transaction-scoped
//!   advisory lock (so two nodes never count the same free slot twice), then the
//!   live slots are counted and the granted ones inserted. SQLite's single
//!   writer gives the same exclusion.
//! - Usage records arrive in batches (the services' group commit). One
//!   transaction inserts them (`ON CONFLICT DO NOTHING`, so a retried batch
//!   never counts twice), adds the newly inserted ones to the daily rollups and
//!   posts their royalties, so rollups and ledger always match the records.
//! - Multi-row statements keep a batch to a handful of round trips; ids in `IN`
//!   lists are integers or placeholders, never spliced text.

use crate::SqlStore;
use crate::db::{col, db_err, page_limit};
use crate::{Dialect, accounts::require_live_account};
use algohub_core::model::*;
use algohub_core::store::{ChangeKind, StoreError, StoreResult, UsageStore};
use async_trait::async_trait;
use rustc_hash::FxHashMap;
use sqlx::AssertSqlSafe;
use std::fmt::Write as _;

/// Tag in the high bits of slot advisory-lock keys, apart from other locks.
const SLOT_LOCK_TAG: i64 = 0x5107_i64 << 48;
/// Rows per multi-row INSERT (16 columns each, well under both backends' limits).
const ROWS_PER_INSERT: usize = 50;

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

/// `($1, $2, ...), (...)` for `rows` rows of `cols` placeholders.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "${}", r * cols + c + 1);
        }
        s.push(')');
    }
    s
}

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
        .map(|r| {
            serde_json::json!([
                r.request_id,
                r.started_at,
                r.duration_us,
                r.caller_id,
                r.acting_as_id,
                r.payer_id,
                r.via.as_str(),
                r.algorithm_id,
                r.owner_id,
                r.algo_owner,
                r.algo_name,
                r.version,
                r.status.as_str(),
                r.error_code,
                r.compute_units,
                r.royalty_microcredits
            ])
        })
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

fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    let mut s = String::new();
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{id}");
    }
    s
}

fn usage_record(r: &sqlx::any::AnyRow) -> StoreResult<UsageRecord> {
    let via: String = col(r, "via")?;
    let status: String = col(r, "status")?;
    Ok(UsageRecord {
        request_id: col(r, "request_id")?,
        started_at: col(r, "started_at")?,
        duration_us: col(r, "duration_us")?,
        caller_id: col(r, "caller_id")?,
        acting_as_id: col(r, "acting_as_id")?,
        payer_id: col(r, "payer_id")?,
        via: Via::parse(&via).ok_or_else(|| StoreError::Other(format!("bad via {via:?}")))?,
        algorithm_id: col(r, "algorithm_id")?,
        owner_id: col(r, "owner_id")?,
        algo_owner: col(r, "algo_owner")?,
        algo_name: col(r, "algo_name")?,
        version: col(r, "version")?,
        status: UsageStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("bad status {status:?}")))?,
        error_code: col(r, "error_code")?,
        compute_units: col(r, "compute_units")?,
        royalty_microcredits: col(r, "royalty_microcredits")?,
    })
}

/// A daily rollup row's key: (day, payer, caller, algorithm, version, via).
pub(crate) type RollupKey<'a> = (i64, i64, i64, i64, &'a str, &'a str);

/// The rollup rows newly stored records add to, in key order, so concurrent
/// batches (several nodes) lock rollup rows in the same order and cannot
/// deadlock.
pub(crate) fn rollups<'a>(inserted: &[&'a UsageRecord]) -> Vec<(RollupKey<'a>, Totals)> {
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
                t.error_duration_us += r.duration_us;
            }
            UsageStatus::Refused | UsageStatus::Limited => t.refused += 1,
        }
        t.compute_units += r.compute_units;
        t.duration_us += r.duration_us;
        if charged(r) {
            t.credits += r.royalty_microcredits;
        }
    }
    let mut rows: Vec<_> = rollup.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
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

#[async_trait]
impl UsageStore for SqlStore {
    async fn get_call_settings(&self, account: AccountId) -> StoreResult<CallSettings> {
        let row = sqlx::query(
            "SELECT COALESCE(u.work_limit, o.work_limit) AS work_limit, \
             COALESCE(o.consolidated_billing, 0) AS consolidated_billing FROM accounts a \
             LEFT JOIN users u ON u.account_id = a.id LEFT JOIN orgs o ON o.account_id = a.id \
             WHERE a.id = $1",
        )
        .bind(account)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        Ok(CallSettings {
            work_limit: col(&row, "work_limit")?,
            consolidated_billing: crate::db::flag(&row, "consolidated_billing")?,
        })
    }

    async fn set_work_limit(
        &self,
        actor: AccountId,
        account: AccountId,
        limit: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        require_live_account(&mut tx, account).await?;
        let kind: String = col(
            &sqlx::query("SELECT kind FROM accounts WHERE id = $1")
                .bind(account)
                .fetch_one(tx.conn())
                .await
                .map_err(db_err)?,
            "kind",
        )?;
        let (sql, change) = if kind == "org" {
            (
                "UPDATE orgs SET work_limit = $1 WHERE account_id = $2",
                ChangeKind::Org,
            )
        } else {
            (
                "UPDATE users SET work_limit = $1 WHERE account_id = $2",
                ChangeKind::User,
            )
        };
        sqlx::query(sql)
            .bind(limit)
            .bind(account)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        if change == ChangeKind::User {
            let note = NewOutboxMessage {
                kind: "notification.work_limit_changed".into(),
                recipient_user_id: Some(account),
                recipient_email: None,
                payload: serde_json::json!({ "work_limit": limit }),
            };
            crate::invitations::insert_outbox(&mut tx, &[note], now_millis()).await?;
        }
        tx.event(
            "account.work_limit_set",
            Some(actor),
            &account.to_string(),
            serde_json::json!({ "work_limit": limit }),
        )
        .await?;
        tx.change(change, account);
        tx.commit().await
    }

    async fn acquire_call_slots(
        &self,
        node: &str,
        requests: &[SlotRequest],
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Vec<bool>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut accounts: Vec<i64> = requests.iter().map(|r| r.account_id).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut tx = self.write().await?;
        if self.dialect() == Dialect::Postgres {
            // All in one statement, in ascending key order (PostgreSQL runs a
            // volatile select list after the sort), so two nodes' batches
            // cannot deadlock.
            let keys = accounts
                .iter()
                .map(|a| format!("({})", SLOT_LOCK_TAG ^ a))
                .collect::<Vec<_>>()
                .join(", ");
            sqlx::query(AssertSqlSafe(format!(
                "SELECT pg_advisory_xact_lock(k) FROM (VALUES {keys}) AS v(k) ORDER BY k"
            )))
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT account_id, COUNT(*) AS n FROM call_slots \
             WHERE account_id IN ({}) AND expires_at > $1 GROUP BY account_id",
            id_list(accounts.iter().copied())
        )))
        .bind(now)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        let mut held: FxHashMap<i64, i64> = FxHashMap::default();
        for r in &rows {
            held.insert(col(r, "account_id")?, col(r, "n")?);
        }
        let granted: Vec<bool> = requests
            .iter()
            .map(|r| {
                let n = held.entry(r.account_id).or_insert(0);
                let ok = *n < r.limit;
                if ok {
                    *n += 1;
                }
                ok
            })
            .collect();
        let to_insert: Vec<&SlotRequest> = requests
            .iter()
            .zip(&granted)
            .filter(|(_, g)| **g)
            .map(|(r, _)| r)
            .collect();
        for chunk in to_insert.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO call_slots (id, account_id, node, expires_at) VALUES {}",
                placeholders(chunk.len(), 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(r.account_id)
                    .bind(node)
                    .bind(lease_until);
            }
            q.execute(tx.conn()).await.map_err(db_err)?;
        }
        tx.commit().await?;
        Ok(granted)
    }

    async fn release_call_slots(&self, ids: &[String]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for chunk in ids.chunks(500) {
            let mut list = String::new();
            for i in 0..chunk.len() {
                if i > 0 {
                    list.push_str(", ");
                }
                let _ = write!(list, "${}", i + 1);
            }
            let sql = format!("DELETE FROM call_slots WHERE id IN ({list})");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(tx.conn()).await.map_err(db_err)?;
        }
        tx.commit().await
    }

    async fn renew_call_slots(
        &self,
        node: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE call_slots SET expires_at = $1 WHERE node = $2")
            .bind(lease_until)
            .bind(node)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM call_slots WHERE expires_at <= $1")
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.commit().await
    }

    async fn record_usage(&self, records: &[UsageRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(path) = &self.sqlite_file {
            return self.record_usage_sqlite(path, records).await;
        }
        let all: Vec<&UsageRecord> = records.iter().collect();
        let mut tx = self.write().await?;
        let added = insert_records(&mut tx, self.dialect(), &all).await?;
        let inserted = if added == all.len() as u64 {
            all
        } else {
            // Some were stored before (a retried batch): start over, inserting
            // only the ones not stored yet, so nothing counts twice.
            drop(tx);
            tx = self.write().await?;
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
        let rows = rollups(&inserted);
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
        tx.commit().await
    }

    async fn get_usage_record(&self, request_id: &str) -> StoreResult<Option<UsageRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USAGE_COLUMNS} FROM usage_records WHERE request_id = $1"
        )))
        .bind(request_id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.as_ref().map(usage_record).transpose()
    }

    async fn list_usage_records(
        &self,
        from: Millis,
        to: Millis,
        callers: &[AccountId],
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<UsageRecord>> {
        let filter = if callers.is_empty() {
            String::new()
        } else {
            format!(
                " AND (caller_id IN ({0}) OR payer_id IN ({0}))",
                id_list(callers.iter().copied())
            )
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USAGE_COLUMNS} FROM usage_records WHERE started_at >= $1 AND started_at < $2{filter} \
             ORDER BY started_at, request_id LIMIT $3 OFFSET $4"
        )))
        .bind(from)
        .bind(to)
        .bind(page_limit(limit))
        .bind(offset.max(0))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(usage_record).collect()
    }

    async fn usage_report(&self, q: &ReportQuery) -> StoreResult<Vec<ReportRow>> {
        const CALLER: &str = "c.name";
        const ALGO: &str = "o.name, al.name";
        let (caller, algo, version, day) = match q.group {
            ReportGroup::Member => (true, false, false, false),
            ReportGroup::Algorithm => (false, true, false, false),
            ReportGroup::Version => (false, true, true, false),
            ReportGroup::Day => (false, false, false, true),
            ReportGroup::CallerVersion => (true, true, true, false),
        };
        let text = |on: bool, expr: &str, name: &str| {
            if on {
                format!("{expr} AS {name}")
            } else {
                format!("CAST(NULL AS TEXT) AS {name}")
            }
        };
        let mut group = Vec::new();
        if caller {
            group.push(CALLER);
        }
        if algo {
            group.push(ALGO);
        }
        if version {
            group.push("d.version");
        }
        if day {
            group.push("d.day");
        }
        let group = group.join(", ");
        let side = match q.side {
            ReportSide::Payer => "d.payer_id = $1",
            ReportSide::Owner => "d.owner_id = $1 AND d.via <> 'sudo'",
            ReportSide::All => "$1 = $1",
        };
        let callers = if q.callers.is_empty() {
            String::new()
        } else {
            format!(
                " AND d.caller_id IN ({})",
                id_list(q.callers.iter().copied())
            )
        };
        let sum = |c: &str| format!("CAST(SUM(d.{c}) AS BIGINT) AS {c}");
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM usage_daily d \
             LEFT JOIN accounts c ON c.id = d.caller_id \
             LEFT JOIN algorithms al ON al.id = d.algorithm_id LEFT JOIN accounts o ON o.id = al.owner_id \
             WHERE {side} AND d.day >= $2 AND d.day <= $3{callers} GROUP BY {group} ORDER BY {group}",
            text(caller, CALLER, "caller_name"),
            text(algo, "o.name", "owner_name"),
            text(algo, "al.name", "algo_name"),
            text(version, "d.version", "version"),
            if day {
                "d.day AS dayno".to_string()
            } else {
                "CAST(NULL AS BIGINT) AS dayno".to_string()
            },
            sum("calls"),
            sum("errors"),
            sum("refused"),
            sum("compute_units"),
            sum("duration_us"),
            sum("error_duration_us"),
            sum("credits"),
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(q.account_id)
            .bind(q.from_day)
            .bind(q.to_day)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let dayno: Option<i64> = col(r, "dayno")?;
                Ok(ReportRow {
                    caller: col(r, "caller_name")?,
                    owner: col(r, "owner_name")?,
                    algorithm: col(r, "algo_name")?,
                    version: col(r, "version")?,
                    day: dayno.and_then(|d| {
                        chrono::DateTime::from_timestamp(d * 86_400, 0)
                            .map(|t| t.format("%Y-%m-%d").to_string())
                    }),
                    calls: col(r, "calls")?,
                    errors: col(r, "errors")?,
                    refused: col(r, "refused")?,
                    compute_units: col(r, "compute_units")?,
                    duration_us: col(r, "duration_us")?,
                    error_duration_us: col(r, "error_duration_us")?,
                    credits: col(r, "credits")?,
                })
            })
            .collect()
    }

    async fn balance(&self, account: AccountId) -> StoreResult<Balance> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN amount_microcredits > 0 THEN amount_microcredits ELSE 0 END), 0) AS BIGINT) AS earned, \
             CAST(COALESCE(SUM(CASE WHEN amount_microcredits < 0 THEN -amount_microcredits ELSE 0 END), 0) AS BIGINT) AS spent \
             FROM ledger_entries WHERE account_id = $1",
        )
        .bind(account)
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        let earned: i64 = col(&row, "earned")?;
        let spent: i64 = col(&row, "spent")?;
        Ok(Balance {
            balance: earned - spent,
            earned,
            spent,
        })
    }

    async fn ledger_total(&self) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_microcredits), 0) AS BIGINT) AS total FROM ledger_entries",
        )
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        col(&row, "total")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_rows() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(id_list([3, 1]), "3, 1");
    }
}
