//! Store conformance: every case runs against SQLite (a fresh temp file per test)
//! and against PostgreSQL (a fresh database on the server that
//! `ALGOHUB_TEST_DATABASE_URL` names, created for that test and dropped
//! afterwards). Built without that variable, the PostgreSQL tests are listed
//! as ignored (build.rs), so the runner's summary shows them skipped.
//!
//! Design choice: each case is written once, as `async fn case(store)` in a module
//! under `tests/conformance/`; the `conformance!` macro turns the list of cases
//! into `sqlite::<case>` and `postgres::<case>` test functions. The case runs in
//! its own task so a failing assertion still lets the harness drop the database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "conformance/accounts.rs"]
mod accounts;
#[path = "conformance/algorithms.rs"]
mod algorithms;
#[path = "conformance/apps.rs"]
mod apps;
#[path = "conformance/connect.rs"]
mod connect;
#[path = "conformance/deletions.rs"]
mod deletions;
#[path = "conformance/invitations.rs"]
mod invitations;
#[path = "conformance/keys.rs"]
mod keys;
#[path = "conformance/orgs.rs"]
mod orgs;
#[path = "conformance/policy.rs"]
mod policy;
#[path = "conformance/support.rs"]
mod support;
#[path = "conformance/teams.rs"]
mod teams;
#[path = "conformance/transfers.rs"]
mod transfers;
#[path = "conformance/usage.rs"]
mod usage;

use algohub_core::store::Written;
use algohub_store::SqlStore;
use std::future::Future;
use std::sync::Arc;

const PG_ENV: &str = "ALGOHUB_TEST_DATABASE_URL";

/// Runs the case in its own task and closes the store; a failure is handed back
/// (not raised) so the caller can clean up first.
async fn run_case<F, Fut>(store: Arc<SqlStore>, case: F) -> Result<(), tokio::task::JoinError>
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(case(store.clone())).await;
    algohub_core::store::Store::close(&*store).await;
    outcome
}

fn raise(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// Runs a case on a fresh SQLite file in a temp directory.
pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    // A missing subdirectory: connect must create it.
    let url = format!(
        "sqlite:{}",
        dir.path().join("data").join("algohub.db").display()
    );
    let store = algohub_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    raise(run_case(store, case).await);
}

/// Runs a case on a fresh PostgreSQL database (the tests that call this are
/// compiled as ignored unless the env var was set at build time; see build.rs).
pub async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var(PG_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| panic!("{PG_ENV} is not set: the PostgreSQL tests cannot run"));
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!("algohub_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url.as_str(), String::new()),
    };
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let store = algohub_store::connect(&format!("{base}/{name}{query}"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let outcome = run_case(store, case).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    raise(outcome);
}

macro_rules! conformance {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::run_sqlite(crate::$module::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(algohub_pg_tests), ignore = "ALGOHUB_TEST_DATABASE_URL was not set when the tests were built")]
                async fn $case() {
                    crate::run_postgres(crate::$module::$case).await;
                }
            )*
        }
    };
}

conformance! {
    accounts::migrations_are_idempotent,
    accounts::names_and_emails_are_unique_case_insensitively,
    accounts::user_tombstones,
    accounts::user_updates_and_flags,
    accounts::concurrent_writers,
    accounts::search_and_suspend,
    accounts::export_users_in_chunks,
    orgs::org_create_makes_creator_admin,
    orgs::org_types,
    orgs::last_admin_refusals,
    orgs::org_limit_holds_under_concurrency,
    deletions::delete_user_cleans_up,
    deletions::delete_org_cleans_up,
    orgs::writes_return_their_policy_changes,
    invitations::accept_and_single_use,
    invitations::one_pending_invitation_per_invitee,
    invitations::decline_rescind_expire,
    invitations::outbox_and_events,
    teams::seats_require_membership,
    teams::app_grants,
    teams::expire_grants_writes_events,
    apps::create_list_search_sort,
    apps::duplicate_transfer_pin_delete,
    transfers::transfer_moves_algorithms,
    transfers::writes_go_by_the_current_owner,
    keys::create_list_revoke_touch,
    keys::cluster_secrets_are_created_once,
    keys::browser_sessions_record_their_use,
    policy::snapshot_contents,
    policy::changes_are_ordered,
    policy::subjects_follow_changes,
    algorithms::algorithms_builds_versions,
    usage::call_settings_and_slots,
    usage::usage_rollups_and_ledger,
    usage::ledger_balances_after_random_workloads,
}

/// The pragmas must hold on every pooled connection, not just the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pragmas_apply_to_every_connection() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let store = algohub_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(store.pool().acquire().await.unwrap());
    }
    for c in &mut conns {
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut **c)
            .await
            .unwrap()
            .get(0);
        assert_eq!(mode.to_lowercase(), "wal");
        let fk: i64 = sqlx::query("PRAGMA foreign_keys")
            .fetch_one(&mut **c)
            .await
            .unwrap()
            .get(0);
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query("PRAGMA busy_timeout")
            .fetch_one(&mut **c)
            .await
            .unwrap()
            .get(0);
        assert_eq!(busy, 5000);
        let sync: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut **c)
            .await
            .unwrap()
            .get(0);
        assert_eq!(sync, 1, "synchronous = NORMAL");
    }
    drop(conns);
    // Foreign keys are really enforced.
    let err = sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (999, 998, 1, 0)",
    )
    .execute(store.pool())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    store.pool().close().await;
}

/// Both migration trees hold the same files, tables and columns (in order),
/// and the same indexes.
#[test]
fn migration_trees_in_step() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |dialect: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dialect))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = list("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, list("postgres"), "same migration file names");
    for file in &sqlite {
        let read = |dialect: &str| std::fs::read_to_string(root.join(dialect).join(file)).unwrap();
        let (a, b) = (
            support::tables(&read("sqlite")),
            support::tables(&read("postgres")),
        );
        // The statements of a file, comments left out, each as its words.
        let statements = |sql: &str| -> Vec<Vec<String>> {
            let sql: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            sql.split(';')
                .map(|stmt| stmt.split_whitespace().map(str::to_string).collect())
                .filter(|words: &Vec<String>| !words.is_empty())
                .collect()
        };
        let indexes = |sql: &str| -> Vec<String> {
            statements(sql)
                .into_iter()
                .filter_map(|words| {
                    let at = words.iter().position(|w| w.eq_ignore_ascii_case("INDEX"))?;
                    words[0]
                        .eq_ignore_ascii_case("CREATE")
                        .then(|| words.get(at + 1).cloned())
                        .flatten()
                })
                .collect()
        };
        let (ia, ib) = (indexes(&read("sqlite")), indexes(&read("postgres")));
        // A data repair (only UPDATE, DELETE or INSERT statements) changes
        // the same tables in both dialects.
        let repaired = |sql: &str| -> Option<Vec<String>> {
            statements(sql)
                .into_iter()
                .map(|words| {
                    let w: Vec<&str> = words.iter().map(String::as_str).collect();
                    match w.as_slice() {
                        ["UPDATE", table, ..]
                        | ["DELETE", "FROM", table, ..]
                        | ["INSERT", "INTO", table, ..] => Some(table.to_string()),
                        _ => None,
                    }
                })
                .collect()
        };
        let (ra, rb) = (repaired(&read("sqlite")), repaired(&read("postgres")));
        assert!(
            !a.is_empty() || !ia.is_empty() || ra.as_ref().is_some_and(|r| !r.is_empty()),
            "{file} creates or alters tables, creates indexes, or repairs data"
        );
        if a.is_empty() && ia.is_empty() {
            assert_eq!(
                ra, rb,
                "{file}: a repair of the same tables in both dialects"
            );
        }
        assert_eq!(a, b, "{file}: same tables and columns in both dialects");
        assert_eq!(ia, ib, "{file}: same indexes in both dialects");
    }
}

/// `sqlite::memory:` works too (one connection, kept for the life of the pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory() {
    use algohub_core::store::{AccountStore, PolicyFeed};
    let store = algohub_store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let u = store
        .create_user(&support::cli(), &support::new_user("mem"))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(store.get_user_by_name("mem").await.unwrap().id, u.id);
    assert_eq!(store.load_policy_snapshot().await.unwrap().users.len(), 1);
    // Usage records go through the pool here (a file has its own writer).
    use algohub_core::model::{UsageRecord, UsageStatus, Via};
    use algohub_core::store::UsageStore;
    let r = UsageRecord {
        request_id: "m1".into(),
        started_at: 1,
        duration_us: 2,
        caller_id: u.id,
        acting_as_id: u.id,
        payer_id: u.id,
        via: Via::Direct,
        algorithm_id: None,
        owner_id: Some(u.id + 1),
        algo_owner: "x".into(),
        algo_name: "y".into(),
        version: "1.0.0".into(),
        status: UsageStatus::Ok,
        error_code: None,
        compute_units: 3,
        royalty_microcredits: 4,
    };
    store.record_usage(std::slice::from_ref(&r)).await.unwrap();
    store.record_usage(std::slice::from_ref(&r)).await.unwrap();
    assert_eq!(store.get_usage_record("m1").await.unwrap(), Some(r));
    assert_eq!(store.balance(u.id).await.unwrap().spent, 4);
    assert_eq!(store.ledger_total().await.unwrap(), 0);
    store.pool().close().await;
}

/// With `metering_fsync` the SQLite usage writer commits with
/// `synchronous = FULL` (the journal drops records once committed); without
/// it, `NORMAL` like every other write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_usage_commits_follow_the_durability_setting() {
    use algohub_core::model::{UsageRecord, UsageStatus, Via};
    use algohub_core::store::{Store, UsageStore};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("u.db").display());
    let store = algohub_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let record = |id: &str| UsageRecord {
        request_id: id.into(),
        started_at: 1,
        duration_us: 2,
        caller_id: 1,
        acting_as_id: 1,
        payer_id: 1,
        via: Via::Direct,
        algorithm_id: None,
        owner_id: None,
        algo_owner: "x".into(),
        algo_name: "y".into(),
        version: "1.0.0".into(),
        status: UsageStatus::Ok,
        error_code: None,
        compute_units: 3,
        royalty_microcredits: 0,
    };
    assert_eq!(
        store.usage_writer_synchronous(),
        None,
        "opened on first use"
    );
    store.record_usage(&[record("a")]).await.unwrap();
    assert_eq!(store.usage_writer_synchronous(), Some(1), "NORMAL");
    store.set_durable_usage_commits(true);
    store.record_usage(&[record("b")]).await.unwrap();
    assert_eq!(store.usage_writer_synchronous(), Some(2), "FULL");
    store.set_durable_usage_commits(false);
    store.record_usage(&[record("c")]).await.unwrap();
    assert_eq!(store.usage_writer_synchronous(), Some(1));
    for id in ["a", "b", "c"] {
        assert!(store.get_usage_record(id).await.unwrap().is_some(), "{id}");
    }
    store.pool().close().await;
}
