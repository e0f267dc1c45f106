//! The usage journal at the hub level: files rotate and are removed once
//! their records are stored, a journal left behind is loaded by the next hub
//! (and by a running one sharing the directory), and shutdown leaves nothing.

use crate::support::{Backend, Db};
use algohub_core::model::{UsageRecord, UsageStatus, Via, now_millis};
use algohub_core::services::{Hub, Settings};
use algohub_core::store::UsageStore;
use std::path::Path;
use std::sync::Arc;

fn record(id: &str) -> UsageRecord {
    UsageRecord {
        request_id: id.into(),
        started_at: now_millis(),
        duration_us: 10,
        caller_id: 1,
        acting_as_id: 1,
        payer_id: 1,
        via: Via::Direct,
        algorithm_id: None,
        owner_id: None,
        algo_owner: "someone".into(),
        algo_name: "echo".into(),
        version: "1.0.0".into(),
        status: UsageStatus::Ok,
        error_code: None,
        compute_units: 7,
        royalty_microcredits: 0,
    }
}

async fn hub(store: &Arc<algohub_store::SqlStore>, dir: &Path, rotate_bytes: u64) -> Arc<Hub> {
    let settings = Settings {
        usage_journal: Some(dir.to_path_buf()),
        usage_journal_rotate_bytes: rotate_bytes,
        usage_journal_rescan: std::time::Duration::from_millis(100),
        ..Settings::default()
    };
    algohub::start_hub(store.clone(), settings, None, None)
        .await
        .unwrap()
}

fn journal_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".journal"))
        .collect();
    names.sort();
    names
}

async fn stored(store: &Arc<algohub_store::SqlStore>, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        n += usize::from(store.get_usage_record(id).await.unwrap().is_some());
    }
    n
}

pub(crate) async fn journal_files_rotate_and_go_only_once_stored(db: Db) {
    let tmp = tempfile::tempdir().unwrap();
    let store = algohub_store::connect(&db.fresh_url().await).await.unwrap();
    store.migrate().await.unwrap();
    let dir = tmp.path().join("usage-journal");
    // A few records per file.
    let hub = hub(&store, &dir, 300).await;
    // The store is locked by another writer: the loader cannot store, so
    // every record lives only in the journal, and no file may go.
    let mut blocker = store.pool().acquire().await.unwrap();
    let lock: &[&str] = match db.backend() {
        Backend::Sqlite => &["BEGIN IMMEDIATE"],
        // Reads go on; the loader's inserts wait.
        Backend::Postgres => &["BEGIN", "LOCK TABLE usage_records IN EXCLUSIVE MODE"],
    };
    for sql in lock {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *blocker)
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    let mut seen = 0;
    for i in 0..30 {
        let id = format!("rot-{i}");
        hub.metering.meter(record(&id)).await.unwrap();
        ids.push(id);
        let now = journal_files(&dir).len();
        assert!(now >= seen, "a file went before its records were stored");
        seen = now;
    }
    assert!(seen >= 4, "the journal rotated ({seen} files)");
    assert_eq!(stored(&store, &ids).await, 0, "nothing stored yet");
    sqlx::query("ROLLBACK")
        .execute(&mut *blocker)
        .await
        .unwrap();
    drop(blocker);
    hub.metering.settle_usage().await.unwrap();
    assert_eq!(stored(&store, &ids).await, ids.len());
    // The next append removes every sealed file whose records are stored.
    hub.metering.meter(record("rot-last")).await.unwrap();
    ids.push("rot-last".into());
    assert_eq!(journal_files(&dir).len(), 1, "{:?}", journal_files(&dir));
    hub.metering.settle_usage().await.unwrap();
    assert_eq!(stored(&store, &ids).await, ids.len());
    // Shutdown, once everything is stored: nothing is left to load.
    hub.metering.retire_usage_journal();
    assert!(journal_files(&dir).is_empty());
    // After retiring, a record goes to the store before `meter` returns.
    hub.metering.meter(record("after-retire")).await.unwrap();
    assert!(
        store
            .get_usage_record("after-retire")
            .await
            .unwrap()
            .is_some()
    );
}

pub(crate) async fn a_journal_left_behind_is_loaded_and_removed(db: Db) {
    let tmp = tempfile::tempdir().unwrap();
    let url = db.fresh_url().await;
    let dir = tmp.path().join("usage-journal");
    // A node on another database: its records reach this one only through
    // the journal it leaves behind (as when a node is killed right after
    // answering, before its loader stored them).
    let other = algohub_store::connect(&db.fresh_url().await).await.unwrap();
    other.migrate().await.unwrap();
    let store = algohub_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ids: Vec<String> = (0..5).map(|i| format!("left-{i}")).collect();
    let dying = hub(&other, &dir, 8 << 20).await;
    for id in &ids {
        dying.metering.meter(record(id)).await.unwrap();
    }
    // Dropped without retiring: its file stays, unlocked once the hub's
    // tasks let go of it (as when its process dies).
    drop(dying);
    let left = dir.join(&journal_files(&dir)[0]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::File::open(&left).unwrap().try_lock().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the journal is let go"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stored(&store, &ids).await, 0);
    // A node starting on the directory loads it into its store, then removes it.
    let next = hub(&store, &dir, 8 << 20).await;
    assert_eq!(stored(&store, &ids).await, ids.len(), "every record loaded");
    assert_eq!(journal_files(&dir).len(), 1, "only the new node's own file");
    assert!(!left.exists());
    drop(next);
}

pub(crate) async fn a_running_node_loads_a_journal_left_behind(db: Db) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("usage-journal");
    let store = algohub_store::connect(&db.fresh_url().await).await.unwrap();
    store.migrate().await.unwrap();
    let other = algohub_store::connect(&db.fresh_url().await).await.unwrap();
    other.migrate().await.unwrap();
    // This node runs (rescanning every 100 ms) while another one, sharing
    // the directory, answers calls and dies.
    let running = hub(&store, &dir, 8 << 20).await;
    let ids: Vec<String> = (0..5).map(|i| format!("gone-{i}")).collect();
    let dying = hub(&other, &dir, 8 << 20).await;
    for id in &ids {
        dying.metering.meter(record(id)).await.unwrap();
    }
    drop(dying);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stored(&store, &ids).await < ids.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "the running node loads the journal left behind"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Its own file stays; the one left behind is gone once loaded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while journal_files(&dir).len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            journal_files(&dir)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    running
        .metering
        .meter(record("still-journaling"))
        .await
        .unwrap();
    running.metering.settle_usage().await.unwrap();
    assert!(
        store
            .get_usage_record("still-journaling")
            .await
            .unwrap()
            .is_some()
    );
}
