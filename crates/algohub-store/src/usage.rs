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

const USAGE_COLUMNS: &str = "request_id, started_at, duration_us, caller_id, acting_as_id, payer_id, via, \
     algorithm_id, owner_id, algo_owner, algo_name, version, status, error_code, compute_units, royalty_microcredits";

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

/// What one record adds to its daily rollup row.
#[derive(Default)]
struct Totals {
    owner_id: i64,
    calls: i64,
    errors: i64,
    refused: i64,
    compute_units: i64,
    duration_us: i64,
    error_duration_us: i64,
    credits: i64,
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
            // Ascending order, so two nodes' batches cannot deadlock.
            for a in &accounts {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SLOT_LOCK_TAG ^ a)
                    .execute(tx.conn())
                    .await
                    .map_err(db_err)?;
            }
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
        let mut tx = self.write().await?;
        let mut inserted: Vec<&UsageRecord> = Vec::with_capacity(records.len());
        for chunk in records.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO usage_records ({USAGE_COLUMNS}) VALUES {} \
                 ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
                placeholders(chunk.len(), 16)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(&r.request_id)
                    .bind(r.started_at)
                    .bind(r.duration_us)
                    .bind(r.caller_id)
                    .bind(r.acting_as_id)
                    .bind(r.payer_id)
                    .bind(r.via.as_str())
                    .bind(r.algorithm_id)
                    .bind(r.owner_id)
                    .bind(&r.algo_owner)
                    .bind(&r.algo_name)
                    .bind(&r.version)
                    .bind(r.status.as_str())
                    .bind(r.error_code.as_deref())
                    .bind(r.compute_units)
                    .bind(r.royalty_microcredits);
            }
            let rows = q.fetch_all(tx.conn()).await.map_err(db_err)?;
            let mut new_ids = rustc_hash::FxHashSet::default();
            for row in &rows {
                new_ids.insert(col::<String>(row, "request_id")?);
            }
            inserted.extend(chunk.iter().filter(|r| new_ids.contains(&r.request_id)));
        }
        // Rollups: one upsert row per (day, payer, caller, algorithm, version, via).
        let mut rollup: FxHashMap<(i64, i64, i64, i64, &str, &str), Totals> = FxHashMap::default();
        for r in &inserted {
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
        // Upserted in key order, so concurrent batches (several nodes) lock
        // rollup rows in the same order and cannot deadlock.
        let mut rows: Vec<_> = rollup.into_iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO usage_daily (day, payer_id, caller_id, algorithm_id, version, via, owner_id, \
                 calls, errors, refused, compute_units, duration_us, error_duration_us, credits) VALUES {} \
                 ON CONFLICT (day, payer_id, caller_id, algorithm_id, version, via) DO UPDATE SET \
                 calls = usage_daily.calls + excluded.calls, errors = usage_daily.errors + excluded.errors, \
                 refused = usage_daily.refused + excluded.refused, \
                 compute_units = usage_daily.compute_units + excluded.compute_units, \
                 duration_us = usage_daily.duration_us + excluded.duration_us, \
                 error_duration_us = usage_daily.error_duration_us + excluded.error_duration_us, \
                 credits = usage_daily.credits + excluded.credits",
                placeholders(chunk.len(), 14)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for ((day, payer, caller, algo, version, via), t) in chunk {
                q = q
                    .bind(*day)
                    .bind(*payer)
                    .bind(*caller)
                    .bind(*algo)
                    .bind(*version)
                    .bind(*via)
                    .bind(t.owner_id)
                    .bind(t.calls)
                    .bind(t.errors)
                    .bind(t.refused)
                    .bind(t.compute_units)
                    .bind(t.duration_us)
                    .bind(t.error_duration_us)
                    .bind(t.credits);
            }
            q.execute(tx.conn()).await.map_err(db_err)?;
        }
        // Royalties: a debit from the payer and a credit to the owner per call.
        let postings: Vec<&&UsageRecord> = inserted.iter().filter(|r| charged(r)).collect();
        let now = now_millis();
        for chunk in postings.chunks(ROWS_PER_INSERT / 2) {
            let sql = format!(
                "INSERT INTO ledger_entries (request_id, account_id, kind, amount_microcredits, at) VALUES {}",
                placeholders(chunk.len() * 2, 5)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                let owner = r.owner_id.unwrap_or_default();
                q = q
                    .bind(&r.request_id)
                    .bind(r.payer_id)
                    .bind("royalty_debit")
                    .bind(-r.royalty_microcredits)
                    .bind(now)
                    .bind(&r.request_id)
                    .bind(owner)
                    .bind("royalty_credit")
                    .bind(r.royalty_microcredits)
                    .bind(now);
            }
            q.execute(tx.conn()).await.map_err(db_err)?;
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
