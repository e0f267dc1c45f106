//! `PolicyFeed`: what the policy engine loads at start and reloads on change.
//!
//! Design choice: the snapshot and each subject are read in one read-only
//! transaction (a WAL snapshot on SQLite, REPEATABLE READ on PostgreSQL), so the
//! rows and the `seq` they are paired with describe the same instant. Changes are
//! read by `seq > last`; `db::WriteTx::commit` guarantees seq order equals commit
//! order, so nothing committed late is ever skipped.

use crate::SqlStore;
use crate::db::{app_role, col, db_err, flag, org_role};
use algohub_core::model::*;
use algohub_core::store::*;
use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// Live users (suspended ones included, as inactive).
macro_rules! users_select {
    () => {
        "SELECT a.id, a.status, u.cluster_admin, u.sudo_user, u.super_powers_until FROM accounts a \
         JOIN users u ON u.account_id = a.id WHERE a.status <> 'deleted'"
    };
}

/// Memberships in live orgs.
macro_rules! memberships_select {
    () => {
        "SELECT m.user_id, m.org_id, m.role, m.expires_at FROM memberships m \
         JOIN accounts o ON o.id = m.org_id WHERE o.status <> 'deleted'"
    };
}

macro_rules! keys_select {
    () => {
        "SELECT id, digest, kind, owner_id, org_id, created_by, minted_reason, scopes, expires_at, \
         revoked_at FROM api_keys"
    };
}

fn user_row(r: &AnyRow) -> StoreResult<PolicyUserRow> {
    Ok(PolicyUserRow {
        id: col(r, "id")?,
        cluster_admin: flag(r, "cluster_admin")?,
        sudo_user: flag(r, "sudo_user")?,
        active: col::<String>(r, "status")? == "active",
        super_powers_until: col(r, "super_powers_until")?,
    })
}

macro_rules! sessions_select {
    () => {
        "SELECT id, kind, digest, user_id, actor_id, expires_at, ended_at, \
         COALESCE(last_seen_at, created_at) AS last_seen FROM sessions"
    };
}

fn session_row(r: &AnyRow) -> StoreResult<PolicySessionRow> {
    Ok(PolicySessionRow {
        id: col(r, "id")?,
        kind: crate::elevated::session_kind(r)?,
        digest: col(r, "digest")?,
        user_id: col(r, "user_id")?,
        actor_id: col(r, "actor_id")?,
        expires_at: col(r, "expires_at")?,
        ended: col::<Option<Millis>>(r, "ended_at")?.is_some(),
        last_seen: col(r, "last_seen")?,
    })
}

fn membership_row(r: &AnyRow) -> StoreResult<PolicyMembershipRow> {
    Ok(PolicyMembershipRow {
        user_id: col(r, "user_id")?,
        org_id: col(r, "org_id")?,
        role: org_role(r, "role")?,
        expires_at: col(r, "expires_at")?,
    })
}

fn seat_row(r: &AnyRow) -> StoreResult<PolicyTeamMemberRow> {
    Ok(PolicyTeamMemberRow {
        team_id: col(r, "team_id")?,
        user_id: col(r, "user_id")?,
        expires_at: col(r, "expires_at")?,
    })
}

fn grant_row(r: &AnyRow) -> StoreResult<PolicyTeamAppRow> {
    Ok(PolicyTeamAppRow {
        team_id: col(r, "team_id")?,
        app_id: col(r, "app_id")?,
        role: app_role(r, "role")?,
        expires_at: col(r, "expires_at")?,
    })
}

fn key_row(r: &AnyRow) -> StoreResult<PolicyKeyRow> {
    Ok(PolicyKeyRow {
        id: col(r, "id")?,
        digest: col(r, "digest")?,
        kind: KeyKind::parse(&col::<String>(r, "kind")?),
        owner_id: col(r, "owner_id")?,
        org_id: col(r, "org_id")?,
        created_by: col(r, "created_by")?,
        minted: col::<Option<String>>(r, "minted_reason")?.is_some(),
        scopes: Scopes(col(r, "scopes")?),
        expires_at: col(r, "expires_at")?,
        revoked: col::<Option<Millis>>(r, "revoked_at")?.is_some(),
    })
}

async fn rows<T>(
    conn: &mut AnyConnection,
    q: crate::db::AnyQuery<'_>,
    f: fn(&AnyRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    q.fetch_all(conn)
        .await
        .map_err(db_err)?
        .iter()
        .map(f)
        .collect()
}

fn org_status(r: &AnyRow) -> StoreResult<(AccountId, bool)> {
    Ok((col(r, "id")?, col::<String>(r, "status")? == "active"))
}

fn pair(a: &'static str, b: &'static str) -> impl Fn(&AnyRow) -> StoreResult<(i64, i64)> {
    move |r| Ok((col(r, a)?, col(r, b)?))
}

#[async_trait]
impl PolicyFeed for SqlStore {
    async fn load_policy_snapshot(&self) -> StoreResult<PolicySnapshot> {
        let mut tx = self.read().await?;
        let c: &mut AnyConnection = &mut tx;
        let seq_row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM policy_changes")
            .fetch_one(&mut *c)
            .await
            .map_err(db_err)?;
        let seq: i64 = col(&seq_row, "seq")?;
        let users = rows(c, sqlx::query(users_select!()), user_row).await?;
        let orgs = rows(
            c,
            sqlx::query(
                "SELECT id, status FROM accounts WHERE kind = 'org' AND status <> 'deleted'",
            ),
            org_status,
        )
        .await?;
        let memberships = rows(c, sqlx::query(memberships_select!()), membership_row).await?;
        let teams = sqlx::query("SELECT id, org_id FROM teams")
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?
            .iter()
            .map(pair("id", "org_id"))
            .collect::<StoreResult<_>>()?;
        let team_members = rows(
            c,
            sqlx::query("SELECT team_id, user_id, expires_at FROM team_members"),
            seat_row,
        )
        .await?;
        let team_apps = rows(
            c,
            sqlx::query("SELECT team_id, app_id, role, expires_at FROM team_apps"),
            grant_row,
        )
        .await?;
        let apps = sqlx::query("SELECT id, owner_id FROM apps")
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?
            .iter()
            .map(pair("id", "owner_id"))
            .collect::<StoreResult<_>>()?;
        let keys = rows(
            c,
            sqlx::query(concat!(keys_select!(), " WHERE revoked_at IS NULL")),
            key_row,
        )
        .await?;
        let algorithms = rows(
            c,
            sqlx::query("SELECT id, owner_id, app_id FROM algorithms WHERE deleted_at IS NULL"),
            algorithm_row,
        )
        .await?;
        let sessions = rows(
            c,
            sqlx::query(concat!(sessions_select!(), " WHERE ended_at IS NULL")),
            session_row,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(PolicySnapshot {
            seq,
            users,
            orgs,
            memberships,
            teams,
            team_members,
            team_apps,
            apps,
            keys,
            algorithms,
            sessions,
        })
    }

    async fn policy_changes_since(&self, seq: i64, limit: i64) -> StoreResult<Vec<PolicyChange>> {
        let found = sqlx::query(
            "SELECT seq, kind, entity_id FROM policy_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(crate::db::page_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|r| {
                let kind: String = col(r, "kind")?;
                Ok(PolicyChange {
                    seq: col(r, "seq")?,
                    kind: ChangeKind::parse(&kind).ok_or_else(|| {
                        StoreError::Other(format!("unknown policy change kind {kind:?}"))
                    })?,
                    id: col(r, "entity_id")?,
                })
            })
            .collect()
    }

    async fn load_policy_subject(&self, kind: ChangeKind, id: i64) -> StoreResult<PolicySubject> {
        let mut tx = self.read().await?;
        let c: &mut AnyConnection = &mut tx;
        let mut s = PolicySubject::default();
        match kind {
            ChangeKind::User => {
                s.user = rows(
                    c,
                    sqlx::query(concat!(users_select!(), " AND a.id = $1")).bind(id),
                    user_row,
                )
                .await?
                .pop();
                if s.user.is_some() {
                    s.memberships = rows(
                        c,
                        sqlx::query(concat!(memberships_select!(), " AND m.user_id = $1")).bind(id),
                        membership_row,
                    )
                    .await?;
                    s.team_seats = rows(
                        c,
                        sqlx::query("SELECT team_id, user_id, expires_at FROM team_members WHERE user_id = $1").bind(id),
                        seat_row,
                    )
                    .await?;
                }
            }
            ChangeKind::Org => {
                s.org_active = rows(
                    c,
                    sqlx::query("SELECT id, status FROM accounts WHERE kind = 'org' AND status <> 'deleted' AND id = $1")
                        .bind(id),
                    org_status,
                )
                .await?
                .pop()
                .map(|(_, active)| active);
            }
            ChangeKind::Team => {
                s.team_org = rows(
                    c,
                    sqlx::query("SELECT id, org_id FROM teams WHERE id = $1").bind(id),
                    |r| col::<i64>(r, "org_id"),
                )
                .await?
                .pop();
                if s.team_org.is_some() {
                    s.team_apps = rows(
                        c,
                        sqlx::query("SELECT team_id, app_id, role, expires_at FROM team_apps WHERE team_id = $1").bind(id),
                        grant_row,
                    )
                    .await?;
                }
            }
            ChangeKind::App => {
                s.app_owner = rows(
                    c,
                    sqlx::query("SELECT owner_id FROM apps WHERE id = $1").bind(id),
                    |r| col::<i64>(r, "owner_id"),
                )
                .await?
                .pop();
            }
            ChangeKind::Algorithm => {
                s.algorithm = rows(
                    c,
                    sqlx::query(
                        "SELECT id, owner_id, app_id FROM algorithms WHERE id = $1 AND deleted_at IS NULL",
                    )
                    .bind(id),
                    algorithm_row,
                )
                .await?
                .pop();
            }
            ChangeKind::Key => {
                s.key = rows(
                    c,
                    sqlx::query(concat!(keys_select!(), " WHERE id = $1")).bind(id),
                    key_row,
                )
                .await?
                .pop();
            }
            ChangeKind::Session => {
                s.session = rows(
                    c,
                    sqlx::query(concat!(sessions_select!(), " WHERE id = $1")).bind(id),
                    session_row,
                )
                .await?
                .pop();
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(s)
    }
}

fn algorithm_row(r: &AnyRow) -> StoreResult<PolicyAlgorithmRow> {
    Ok(PolicyAlgorithmRow {
        id: col(r, "id")?,
        owner_id: col(r, "owner_id")?,
        app_id: col(r, "app_id")?,
    })
}
