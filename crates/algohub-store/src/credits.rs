//! Balances and credit grants. A grant is a ledger posting like a royalty:
//! the account's `credit_grant` entry and the cluster's (account 0)
//! opposite `credit_issue` entry, so the ledger still sums to zero.

use crate::SqlStore;
use crate::accounts::require_live_account;
use crate::db::{col, db_err};
use crate::usage_write::LEDGER_INSERT;
use algohub_core::audit::{AuditContext, EventKind};
use algohub_core::model::{AccountId, Balance, now_millis};
use algohub_core::store::{StoreError, StoreResult};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe};

/// The account the cluster issues granted credits from.
const CLUSTER_ACCOUNT: AccountId = 0;

const BALANCE_SQL: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN kind <> 'credit_grant' AND amount_microcredits > 0 \
       THEN amount_microcredits ELSE 0 END), 0) AS BIGINT) AS earned, \
     CAST(COALESCE(SUM(CASE WHEN kind <> 'credit_grant' AND amount_microcredits < 0 \
       THEN -amount_microcredits ELSE 0 END), 0) AS BIGINT) AS spent, \
     CAST(COALESCE(SUM(CASE WHEN kind = 'credit_grant' THEN amount_microcredits ELSE 0 END), 0) \
       AS BIGINT) AS granted \
     FROM ledger_entries WHERE account_id = $1";

fn balance_of(row: &sqlx::any::AnyRow) -> StoreResult<Balance> {
    let (earned, spent, granted): (i64, i64, i64) = (
        col(row, "earned")?,
        col(row, "spent")?,
        col(row, "granted")?,
    );
    let balance = earned
        .checked_add(granted)
        .and_then(|b| b.checked_sub(spent))
        .ok_or_else(|| StoreError::Other("the balance overflows 64 bits".into()))?;
    Ok(Balance {
        balance,
        earned,
        spent,
        granted,
    })
}

/// An account's balance from the ledger.
pub(crate) async fn balance_in(pool: &AnyPool, account: AccountId) -> StoreResult<Balance> {
    let row = sqlx::query(BALANCE_SQL)
        .bind(account)
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    balance_of(&row)
}

async fn balance_tx(conn: &mut AnyConnection, account: AccountId) -> StoreResult<Balance> {
    let row = sqlx::query(BALANCE_SQL)
        .bind(account)
        .fetch_one(conn)
        .await
        .map_err(db_err)?;
    balance_of(&row)
}

/// Grants (or, negative, takes back) credits; recorded with the balance
/// before and after. Returns the new balance.
pub(crate) async fn grant(
    store: &SqlStore,
    ctx: &AuditContext,
    actor: AccountId,
    account: AccountId,
    microcredits: i64,
    reason: &str,
) -> StoreResult<Balance> {
    let mut tx = store.write(ctx).await?;
    require_live_account(&mut tx, account).await?;
    tx.lock_account(account).await?;
    let before = balance_tx(tx.conn(), account).await?;
    let after_balance = before
        .balance
        .checked_add(microcredits)
        .ok_or_else(|| StoreError::Other("the balance would overflow 64 bits".into()))?;
    let at = now_millis();
    // The grant and its counter-posting, in one statement.
    sqlx::query(AssertSqlSafe(format!(
        "{LEDGER_INSERT} VALUES ($1, $2, 'credit_grant', $3, $4), ($1, $5, 'credit_issue', $6, $4)"
    )))
    .bind(ctx.request_id.clone())
    .bind(account)
    .bind(microcredits)
    .bind(at)
    .bind(CLUSTER_ACCOUNT)
    .bind(-microcredits)
    .execute(tx.conn())
    .await
    .map_err(db_err)?;
    tx.event(
        EventKind::CreditsGranted,
        Some(actor),
        &account.to_string(),
        serde_json::json!({
            "microcredits": microcredits,
            "reason": reason,
            "old": {"balance_microcredits": before.balance},
            "new": {"balance_microcredits": after_balance},
        }),
    )
    .await?;
    let after = balance_tx(tx.conn(), account).await?;
    tx.commit().await?;
    Ok(after)
}
