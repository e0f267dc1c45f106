//! The plumbing every query file shares: transactions, error mapping, row decoding,
//! and the policy-change and event records written inside write transactions.
//!
//! Design choice: every write goes through [`WriteTx`]. On SQLite it first takes the
//! store's write lock and starts with `BEGIN IMMEDIATE`, so writers queue instead of
//! failing with "database is locked". Policy changes are collected while the
//! transaction runs and inserted at commit; on PostgreSQL that insert is preceded by
//! a transaction-scoped advisory lock, so change sequence numbers are handed out in
//! commit order and a poller reading `seq > last` never skips a late commit.

use crate::{Dialect, SqlStore};
use algohub_core::audit::{AuditContext, EventKind};
use algohub_core::model::{Millis, now_millis};
use algohub_core::roles::{AppRole, OrgRole};
use algohub_core::store::Written;
use algohub_core::store::{ChangeKind, Constraint, StoreError, StoreResult};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;
use sqlx::{Any, Row, Transaction};

/// A query on the `Any` driver, as built by `sqlx::query(...).bind(...)`.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Any advisory-lock key will do, as long as every node uses the same one.
const POLICY_CHANGE_LOCK: i64 = 727_272;
/// Orders audit records into one chain across nodes (taken before the policy lock).
const AUDIT_CHAIN_LOCK: i64 = 727_273;
/// Serializes changes that could leave the cluster without an admin.
const CLUSTER_ADMINS_LOCK: i64 = 727_274;

/// Known unique constraints: (PostgreSQL constraint name, SQLite "table.columns",
/// the name reported in `StoreError::Conflict`).
const UNIQUE_CONSTRAINTS: &[(&str, &str, Constraint)] = &[
    (
        "accounts_name_key",
        "accounts.name",
        Constraint::AccountName,
    ),
    (
        "accounts_uuid_key",
        "accounts.uuid",
        Constraint::AccountUuid,
    ),
    ("users_email_key", "users.email", Constraint::UserEmail),
    (
        "org_types_name_key",
        "org_types.name",
        Constraint::OrgTypeName,
    ),
    ("org_types_pkey", "org_types.id", Constraint::OrgTypeId),
    (
        "memberships_pkey",
        "memberships.org_id, memberships.user_id",
        Constraint::Membership,
    ),
    (
        "invitations_pkey",
        "invitations.id",
        Constraint::InvitationId,
    ),
    (
        "invitations_token_digest_key",
        "invitations.token_digest",
        Constraint::InvitationToken,
    ),
    (
        "invitations_pending_user_key",
        "invitations.org_id, invitations.invitee_user_id",
        Constraint::PendingInvitation,
    ),
    (
        "invitations_pending_email_key",
        "invitations.org_id, invitations.invitee_email",
        Constraint::PendingInvitation,
    ),
    ("apps_uuid_key", "apps.uuid", Constraint::AppUuid),
    (
        "algorithms_owner_name_key",
        "algorithms.owner_id, algorithms.name_lower",
        Constraint::AlgorithmName,
    ),
    (
        "versions_semver_key",
        "versions.algorithm_id, versions.major, versions.minor, versions.patch",
        Constraint::VersionExists,
    ),
    (
        "versions_build_key",
        "versions.build_id",
        Constraint::NoNewBuild,
    ),
    (
        "apps_owner_name_key",
        "apps.owner_id, apps.name_lower",
        Constraint::AppName,
    ),
    (
        "app_pins_pkey",
        "app_pins.user_id, app_pins.app_id",
        Constraint::AppPin,
    ),
    ("teams_uuid_key", "teams.uuid", Constraint::TeamUuid),
    (
        "teams_org_name_key",
        "teams.org_id, teams.name_lower",
        Constraint::TeamName,
    ),
    (
        "team_members_pkey",
        "team_members.team_id, team_members.user_id",
        Constraint::TeamMember,
    ),
    (
        "team_apps_pkey",
        "team_apps.team_id, team_apps.app_id",
        Constraint::TeamApp,
    ),
    ("api_keys_uuid_key", "api_keys.uuid", Constraint::KeyUuid),
    (
        "api_keys_digest_key",
        "api_keys.digest",
        Constraint::KeyDigest,
    ),
];

/// Maps a sqlx error: unique violations become `Conflict` with a readable
/// constraint name, foreign-key violations and missing rows `NotFound`.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::RowNotFound = e {
        return StoreError::NotFound;
    }
    if let sqlx::Error::Database(d) = &e {
        match d.kind() {
            ErrorKind::UniqueViolation => {
                return StoreError::Conflict {
                    constraint: constraint_name(d.constraint(), d.message()),
                };
            }
            ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
            _ => {}
        }
    }
    StoreError::Other(e.to_string())
}

fn constraint_name(pg_constraint: Option<&str>, message: &str) -> Constraint {
    if let Some(c) = pg_constraint {
        return UNIQUE_CONSTRAINTS
            .iter()
            .find(|(pg, _, _)| *pg == c)
            .map_or_else(
                || Constraint::Other(c.to_string()),
                |(_, _, name)| name.clone(),
            );
    }
    // SQLite: "UNIQUE constraint failed: table.col[, table.col]"
    let columns = message
        .rsplit_once("failed: ")
        .map_or(message, |(_, cols)| cols)
        .trim();
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(_, sqlite, _)| *sqlite == columns)
        .map_or_else(
            || Constraint::Other(columns.to_string()),
            |(_, _, name)| name.clone(),
        )
}

pub(crate) fn conflict(constraint: Constraint) -> StoreError {
    StoreError::Conflict { constraint }
}

/// Reads one column.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name).map_err(db_err)
}

/// Reads a 0/1 integer column as a boolean.
pub(crate) fn flag(row: &AnyRow, name: &str) -> StoreResult<bool> {
    Ok(col::<i64>(row, name)? != 0)
}

pub(crate) fn org_role(row: &AnyRow, name: &str) -> StoreResult<OrgRole> {
    let v: i64 = col(row, name)?;
    OrgRole::from_i64(v)
        .ok_or_else(|| StoreError::Other(format!("bad org role {v} in column {name}")))
}

pub(crate) fn app_role(row: &AnyRow, name: &str) -> StoreResult<AppRole> {
    let v: i64 = col(row, name)?;
    AppRole::from_i64(v)
        .ok_or_else(|| StoreError::Other(format!("bad app role {v} in column {name}")))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> StoreResult<T> {
    let raw: String = col(row, name)?;
    serde_json::from_str(&raw)
        .map_err(|e| StoreError::Other(format!("bad JSON in column {name}: {e}")))
}

/// A value as the JSON text a column keeps.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("unstorable JSON: {e}")))
}

/// `Page.limit` of 0 or less means "no limit".
pub(crate) fn page_limit(limit: i64) -> i64 {
    if limit <= 0 { i64::MAX } else { limit }
}

pub(crate) fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// How `WriteTx::lock_app` and `lock_algorithm` lock a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// Others may read and share-lock it; nobody may change it.
    Share,
    /// Nobody else may lock or change it.
    Update,
}

/// A write transaction; dropping it without `commit` rolls it back.
pub(crate) struct WriteTx<'a> {
    // Field order matters: the transaction is dropped (rolled back) before the
    // SQLite write lock is released.
    tx: Transaction<'static, Any>,
    dialect: Dialect,
    changes: Vec<(ChangeKind, i64)>,
    /// Audit records to append at commit: (action, actor, target, detail, outcome).
    events: Vec<(
        EventKind,
        Option<i64>,
        String,
        serde_json::Value,
        &'static str,
    )>,
    /// The facts of the request the records are written for (`None` for the
    /// node's own bookkeeping, which writes no audit records).
    audit: Option<AuditContext>,
    /// Organizations one user may belong to; 0 = unlimited.
    pub(crate) max_orgs_per_user: u32,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl SqlStore {
    /// Starts a write transaction on behalf of a request (see the module docs
    /// for the SQLite lock); its audit records carry the request's facts.
    pub(crate) async fn write(&self, ctx: &AuditContext) -> StoreResult<WriteTx<'_>> {
        let mut tx = self.write_unaudited().await?;
        tx.audit = Some(ctx.clone());
        Ok(tx)
    }

    /// Starts a write transaction of the node's own bookkeeping (call slots,
    /// usage, the outbox, key use times): it records no audit records.
    pub(crate) async fn write_unaudited(&self) -> StoreResult<WriteTx<'_>> {
        let (guard, tx) = match self.dialect {
            Dialect::Sqlite => {
                let guard = self.write_lock.lock().await;
                (Some(guard), self.pool.begin_with("BEGIN IMMEDIATE").await)
            }
            Dialect::Postgres => (None, self.pool.begin().await),
        };
        Ok(WriteTx {
            tx: tx.map_err(db_err)?,
            dialect: self.dialect,
            changes: Vec::new(),
            events: Vec::new(),
            audit: None,
            max_orgs_per_user: self
                .max_orgs_per_user
                .load(std::sync::atomic::Ordering::Relaxed),
            _guard: guard,
        })
    }

    /// Starts a read-only transaction that sees one consistent state of the
    /// database (a WAL snapshot on SQLite, REPEATABLE READ on PostgreSQL).
    pub(crate) async fn read(&self) -> StoreResult<Transaction<'static, Any>> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin().await,
            Dialect::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
            }
        }
        .map_err(db_err)
    }
}

impl WriteTx<'_> {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Records that the policy engine must reload this entity (written at commit).
    pub(crate) fn change(&mut self, kind: ChangeKind, id: i64) {
        if !self.changes.contains(&(kind, id)) {
            self.changes.push((kind, id));
        }
    }

    /// Serializes transactions that check "is another cluster admin left?"
    /// (PostgreSQL; SQLite has one writer).
    pub(crate) async fn lock_cluster_admins(&mut self) -> StoreResult<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CLUSTER_ADMINS_LOCK)
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Refuses with `Conflict { constraint: "last_cluster_admin" }` unless some
    /// active cluster admin other than `id` remains. Call after
    /// `lock_cluster_admins`.
    pub(crate) async fn require_other_cluster_admin(&mut self, id: i64) -> StoreResult<()> {
        let target_is_admin = sqlx::query(
            "SELECT u.account_id FROM users u JOIN accounts a ON a.id = u.account_id \
             WHERE u.account_id = $1 AND u.cluster_admin = 1 AND a.status = 'active'",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await
        .map_err(db_err)?
        .is_some();
        if !target_is_admin {
            return Ok(());
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM users u JOIN accounts a ON a.id = u.account_id \
             WHERE u.cluster_admin = 1 AND a.status = 'active' AND a.id <> $1",
        )
        .bind(id)
        .fetch_one(self.conn())
        .await
        .map_err(db_err)?;
        if col::<i64>(&row, "n")? == 0 {
            return Err(conflict(Constraint::LastClusterAdmin));
        }
        Ok(())
    }

    /// Locks account rows until commit (PostgreSQL), so checks such as "is this the
    /// last admin?" cannot race. On SQLite the write transaction already excludes
    /// every other writer. Lock in ascending id order to avoid deadlocks.
    pub(crate) async fn lock_account(&mut self, id: i64) -> StoreResult<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
                .bind(id)
                .fetch_optional(self.conn())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Locks an app row until commit (PostgreSQL; on SQLite the write
    /// transaction already excludes every other writer). `Update` for a
    /// transfer, which changes the app's owner; `Share` for a write that puts
    /// an algorithm into the app and must see the owner it will keep until
    /// commit. An app is locked before the algorithms in it (as a transfer
    /// does), so these locks cannot deadlock.
    pub(crate) async fn lock_app(&mut self, id: i64, lock: RowLock) -> StoreResult<()> {
        self.lock_row(
            match lock {
                RowLock::Share => "SELECT id FROM apps WHERE id = $1 FOR SHARE",
                RowLock::Update => "SELECT id FROM apps WHERE id = $1 FOR UPDATE",
            },
            id,
        )
        .await
    }

    /// Locks an algorithm row until commit (PostgreSQL; see `lock_app`):
    /// `Share` while its owner decides what is written (a version's status),
    /// `Update` before changing the row. Either orders the write against an
    /// app transfer's `UPDATE algorithms`: the transfer waits for it, or it
    /// waits for the transfer and then reads the new owner.
    pub(crate) async fn lock_algorithm(&mut self, id: i64, lock: RowLock) -> StoreResult<()> {
        self.lock_row(
            match lock {
                RowLock::Share => "SELECT id FROM algorithms WHERE id = $1 FOR SHARE",
                RowLock::Update => "SELECT id FROM algorithms WHERE id = $1 FOR NO KEY UPDATE",
            },
            id,
        )
        .await
    }

    async fn lock_row(&mut self, sql: &'static str, id: i64) -> StoreResult<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query(sql)
                .bind(id)
                .fetch_optional(self.conn())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Records a domain event (an audit record) in this transaction; it is
    /// appended to the audit chain at commit.
    pub(crate) async fn event(
        &mut self,
        kind: EventKind,
        actor: Option<i64>,
        subject: &str,
        detail: serde_json::Value,
    ) -> StoreResult<()> {
        self.events
            .push((kind, actor, subject.to_string(), detail, "ok"));
        Ok(())
    }

    /// Records an audit record with an outcome other than `ok` (e.g. `denied`).
    pub(crate) fn audit(
        &mut self,
        kind: EventKind,
        actor: Option<i64>,
        subject: &str,
        detail: serde_json::Value,
        outcome: &'static str,
    ) {
        self.events
            .push((kind, actor, subject.to_string(), detail, outcome));
    }

    /// Appends the buffered audit records to the chain. The chain lock (on
    /// PostgreSQL; SQLite has one writer) is the last lock a transaction takes
    /// before the policy lock, so it cannot deadlock with row locks.
    async fn append_audit(&mut self) -> StoreResult<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(AUDIT_CHAIN_LOCK)
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        let last =
            sqlx::query("SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1")
                .fetch_optional(self.conn())
                .await
                .map_err(db_err)?;
        let mut prev: String = match last {
            Some(r) => col(&r, "hash")?,
            None => String::new(),
        };
        // Bookkeeping writes record nothing; should one, it is the node's act.
        let ctx = self.audit.take().unwrap_or_else(AuditContext::system);
        let at = now_millis();
        for (kind, actor, subject, detail, outcome) in std::mem::take(&mut self.events) {
            let detail = detail.to_string();
            let (actor, effective) = ctx.actors(actor);
            let hash = algohub_core::audit::chain_hash(
                &prev,
                at,
                kind.as_str(),
                actor,
                effective,
                &subject,
                &detail,
                outcome,
                ctx.facts(),
            );
            sqlx::query(
                "INSERT INTO events (kind, actor_id, subject, detail, at, effective_id, outcome, request_id, \
                 auth_method, token_sha256, source, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(kind.as_str())
            .bind(actor)
            .bind(&subject)
            .bind(&detail)
            .bind(at)
            .bind(effective)
            .bind(outcome)
            .bind(&ctx.request_id)
            .bind(ctx.credential.as_str())
            .bind(ctx.token_sha256.as_deref())
            .bind(ctx.source.as_deref())
            .bind(&prev)
            .bind(&hash)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
            prev = hash;
        }
        Ok(())
    }

    /// Commits an audited write and returns its value with the policy
    /// changes it recorded (see `Written`).
    pub(crate) async fn finish<T>(self, value: T) -> StoreResult<Written<T>> {
        let changes = self.commit().await?;
        Ok(Written::new(value, changes))
    }

    /// Commits, returning the entities whose policy rows changed.
    pub(crate) async fn commit(mut self) -> StoreResult<Vec<(ChangeKind, i64)>> {
        self.append_audit().await?;
        let changes = std::mem::take(&mut self.changes);
        if !changes.is_empty() {
            if self.dialect == Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(POLICY_CHANGE_LOCK)
                    .execute(self.conn())
                    .await
                    .map_err(db_err)?;
            }
            let at: Millis = now_millis();
            for &(kind, id) in &changes {
                sqlx::query("INSERT INTO policy_changes (kind, entity_id, at) VALUES ($1, $2, $3)")
                    .bind(kind.as_str())
                    .bind(id)
                    .bind(at)
                    .execute(self.conn())
                    .await
                    .map_err(db_err)?;
            }
        }
        self.tx.commit().await.map_err(db_err)?;
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_names_are_readable() {
        assert_eq!(
            constraint_name(Some("accounts_name_key"), ""),
            Constraint::AccountName
        );
        assert_eq!(
            constraint_name(None, "UNIQUE constraint failed: users.email"),
            Constraint::UserEmail
        );
        assert_eq!(
            constraint_name(
                None,
                "(code: 2067) UNIQUE constraint failed: memberships.org_id, memberships.user_id"
            ),
            Constraint::Membership
        );
        assert_eq!(
            constraint_name(Some("other_key"), ""),
            Constraint::Other("other_key".into())
        );
    }
}
