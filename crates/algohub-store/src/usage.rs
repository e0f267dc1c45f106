//! `UsageStore`: concurrency slots, usage records, daily rollups, the ledger.
//!
//! Design choices:
//! - Slots are rows (one per running call) so that the limit holds across every
//!   node on one database. A batch of requests is decided in one transaction:
//!   on PostgreSQL each account's requests first take a transaction-scoped
//!   advisory lock (so two nodes never count the same free slot twice), then the
//!   live slots are counted and the granted ones inserted. SQLite's single
//!   writer gives the same exclusion.
//! - Usage records arrive in batches (the services' group commit or the
//!   usage journal's loader); `usage_write.rs` and `usage_sqlite.rs` write them.
//! - Multi-row statements keep a batch of slots to a handful of round trips;
//!   ids in `IN` lists are integers or placeholders, never spliced text.

use crate::SqlStore;
use crate::db::{WriteTx, col, db_err, page_limit};
use crate::usage_write::USAGE_COLUMNS;
use crate::{Dialect, accounts::require_live_account};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::store::Written;
use algohub_core::store::{ChangeKind, StoreError, StoreResult, UsageStore};
use async_trait::async_trait;
use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::AssertSqlSafe;
use std::fmt::Write as _;

/// Tag in the high bits of slot advisory-lock keys, apart from other locks.
const SLOT_LOCK_TAG: i64 = 0x5107_i64 << 48;
/// Rows per multi-row INSERT (well under both backends' parameter limits).
const ROWS_PER_INSERT: usize = 50;

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
        ctx: &AuditContext,
        actor: AccountId,
        account: AccountId,
        limit: Option<i64>,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        require_live_account(&mut tx, account).await?;
        let kind: String = col(
            &sqlx::query("SELECT kind FROM accounts WHERE id = $1")
                .bind(account)
                .fetch_one(tx.conn())
                .await
                .map_err(db_err)?,
            "kind",
        )?;
        let old: Option<i64> = col(
            &sqlx::query(
                "SELECT COALESCE(u.work_limit, o.work_limit) AS work_limit FROM accounts a \
                 LEFT JOIN users u ON u.account_id = a.id LEFT JOIN orgs o ON o.account_id = a.id \
                 WHERE a.id = $1",
            )
            .bind(account)
            .fetch_one(tx.conn())
            .await
            .map_err(db_err)?,
            "work_limit",
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
            EventKind::AccountWorkLimitSet,
            Some(actor),
            &account.to_string(),
            serde_json::json!({ "old": { "work_limit": old }, "new": { "work_limit": limit } }),
        )
        .await?;
        tx.change(change, account);
        tx.finish(()).await
    }

    async fn get_storage_quota(&self, account: AccountId) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT storage_quota_mib FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        col(&row, "storage_quota_mib")
    }

    async fn set_storage_quota(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        account: AccountId,
        quota_mib: Option<i64>,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.write(ctx).await?;
        require_live_account(&mut tx, account).await?;
        let old: Option<i64> = col(
            &sqlx::query("SELECT storage_quota_mib FROM accounts WHERE id = $1")
                .bind(account)
                .fetch_one(tx.conn())
                .await
                .map_err(db_err)?,
            "storage_quota_mib",
        )?;
        sqlx::query("UPDATE accounts SET storage_quota_mib = $1 WHERE id = $2")
            .bind(quota_mib)
            .bind(account)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.event(
            EventKind::AccountStorageQuotaSet,
            Some(actor),
            &account.to_string(),
            serde_json::json!({ "old": { "storage_quota_mib": old }, "new": { "storage_quota_mib": quota_mib } }),
        )
        .await?;
        tx.commit().await?;
        Ok(old)
    }

    async fn acquire_call_slots(
        &self,
        node: &str,
        requests: &[SlotRequest],
        release: &[String],
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Vec<bool>> {
        if requests.is_empty() && release.is_empty() {
            return Ok(Vec::new());
        }
        let mut accounts: Vec<i64> = requests.iter().map(|r| r.account_id).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut tx = self.write_unaudited().await?;
        // Freed first, so the requests of this batch can take those slots.
        delete_slots(&mut tx, release).await?;
        if requests.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
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
        let released: FxHashSet<&str> = release.iter().map(String::as_str).collect();
        let to_insert: Vec<&SlotRequest> = requests
            .iter()
            .zip(&granted)
            .filter(|(r, g)| **g && !released.contains(r.id.as_str()))
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

    async fn renew_call_slots(
        &self,
        node: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.write_unaudited().await?;
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
        tx.commit().await.map(drop)
    }

    async fn call_slot_held(&self, id: &str, now: Millis) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM call_slots WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn record_usage(&self, records: &[UsageRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        match &self.sqlite_file {
            Some(path) => self.record_usage_sqlite(path, records.into()).await,
            None => self.record_usage_pool(records).await,
        }
    }

    async fn record_usage_shared(&self, records: std::sync::Arc<[UsageRecord]>) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        match &self.sqlite_file {
            Some(path) => self.record_usage_sqlite(path, records).await,
            None => self.record_usage_pool(&records).await,
        }
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
        crate::credits::balance_in(self.pool(), account).await
    }

    async fn grant_credits(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        account: AccountId,
        microcredits: i64,
        reason: &str,
    ) -> StoreResult<Balance> {
        crate::credits::grant(self, ctx, actor, account, microcredits, reason).await
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

/// Deletes the slot rows `ids` (500 to a statement).
async fn delete_slots(tx: &mut WriteTx<'_>, ids: &[String]) -> StoreResult<()> {
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
    Ok(())
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
