//! Fixtures and small assertions shared by the conformance cases.

use algohub_core::model::*;
use algohub_core::roles::OrgRole;
use algohub_core::store::*;
use algohub_store::SqlStore;

pub const HOUR: Millis = 3_600_000;

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.to_string(),
        email: format!("{name}@example.com"),
        full_name: format!("{name} Example"),
        company_name: None,
        company_role: None,
        password_hash: Some("$argon2id$fake".to_string()),
        cluster_admin: false,
    }
}

pub async fn user(s: &SqlStore, name: &str) -> User {
    s.create_user(&cli(), &new_user(name))
        .await
        .map(Written::unindexed)
        .unwrap()
}

pub async fn basic_type(s: &SqlStore) -> String {
    s.list_org_types()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "basic")
        .expect("seeded basic type")
        .id
}

pub async fn org(s: &SqlStore, name: &str, creator: AccountId) -> Org {
    let new = NewOrg {
        name: name.to_string(),
        label: format!("{name} Inc."),
        contact_name: "Contact".to_string(),
        email: format!("contact@{name}.example"),
        url: None,
        type_id: basic_type(s).await,
    };
    s.create_org(&cli(), &new, creator)
        .await
        .map(Written::unindexed)
        .unwrap()
}

/// An org with `admin` as creator and `members` added as contributors.
pub async fn org_with(s: &SqlStore, name: &str, admin: AccountId, members: &[AccountId]) -> Org {
    let o = org(s, name, admin).await;
    for m in members {
        s.add_member(&cli(), o.id, *m, OrgRole::Contributor, None)
            .await
            .map(Written::unindexed)
            .unwrap();
    }
    o
}

pub fn new_key(
    tag: &str,
    kind: KeyKind,
    owner: AccountId,
    org: Option<AccountId>,
    created_by: AccountId,
) -> NewKey {
    NewKey {
        uuid: uuid::Uuid::new_v4().to_string(),
        kind,
        owner_id: owner,
        org_id: org,
        label: format!("key {tag}"),
        key_type: "simple".to_string(),
        mask: format!("sim****{tag}"),
        digest: format!("digest-{tag}"),
        scopes: Scopes::ALL,
        allow_web_algo: false,
        referer_host: None,
        algo_acl: vec!["acme/hello".to_string()],
        created_by,
        expires_at: None,
        minted_reason: None,
    }
}

pub fn new_invitation(
    org: AccountId,
    user: Option<AccountId>,
    email: Option<&str>,
    by: AccountId,
    now: Millis,
) -> NewInvitation {
    NewInvitation {
        id: uuid::Uuid::new_v4().to_string(),
        org_id: org,
        invitee_user_id: user,
        invitee_email: email.map(str::to_string),
        role: OrgRole::Contributor,
        token_digest: Some(format!("token-{}", uuid::Uuid::new_v4())),
        invited_by: by,
        created_at: now,
        expires_at: now + 24 * HOUR,
    }
}

/// The constraint of a `Conflict`, or a panic naming what came instead.
#[track_caller]
pub fn conflict<T: std::fmt::Debug>(r: StoreResult<T>) -> Constraint {
    match r {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[track_caller]
pub fn not_found<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Every policy change so far.
pub async fn changes(s: &SqlStore) -> Vec<PolicyChange> {
    s.policy_changes_since(0, 0).await.unwrap()
}

/// Changes after `seq`, as (kind, id) pairs.
pub async fn changes_after(s: &SqlStore, seq: i64) -> Vec<(ChangeKind, i64)> {
    s.policy_changes_since(seq, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.id))
        .collect()
}

pub async fn last_seq(s: &SqlStore) -> i64 {
    changes(s).await.last().map_or(0, |c| c.seq)
}

/// Parses `CREATE TABLE` blocks (one column or constraint per line) into
/// (table, [columns in order]).
pub fn tables(sql: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or("").trim();
        // `ALTER TABLE t ADD COLUMN c ...` counts as table `t` gaining `c`.
        if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
            let mut words = rest.split_whitespace();
            if let (Some(table), Some("ADD"), Some("COLUMN"), Some(column)) =
                (words.next(), words.next(), words.next(), words.next())
            {
                out.push((
                    format!("{} (altered)", table.to_lowercase()),
                    vec![column.to_lowercase()],
                ));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            let name = rest
                .trim_start_matches("IF NOT EXISTS ")
                .trim_end_matches('(')
                .trim();
            current = Some((name.to_lowercase(), Vec::new()));
            continue;
        }
        let Some((_, columns)) = current.as_mut() else {
            continue;
        };
        if line.starts_with(')') {
            out.extend(current.take());
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        let keyword = ["CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", ""]
            .contains(&first.to_uppercase().as_str());
        if !keyword {
            columns.push(first.trim_end_matches(',').to_lowercase());
        }
    }
    out
}

/// The audit facts of the store writes a case makes (as an `algohub admin`
/// command's: no request, `auth_method: cli`).
pub fn cli() -> algohub_core::audit::AuditContext {
    algohub_core::audit::AuditContext::cli()
}
