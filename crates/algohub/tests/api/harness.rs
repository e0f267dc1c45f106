//! The harness: every API case is written once, as `async fn case(db: Db)`,
//! and listed once in `api_tests!` (main.rs), which runs it on SQLite and on
//! PostgreSQL, each time on fresh databases (`Db`) that are dropped when the
//! case ends, passed or failed (`run`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The database backend a test case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a test case gets from the harness: its backend, and fresh databases
/// on it. Every PostgreSQL database handed out is dropped when the case ends,
/// passed or failed (see `run`).
#[derive(Clone)]
pub struct Db(std::sync::Arc<DbInner>);

struct DbInner {
    backend: Backend,
    /// SQLite files of the case live here.
    dir: tempfile::TempDir,
    /// The server's URL named by `ALGOHUB_TEST_DATABASE_URL` (PostgreSQL only).
    admin_url: Option<String>,
    created: std::sync::Mutex<Vec<String>>,
}

/// The variable naming the PostgreSQL server the `postgres::` tests run on.
pub const PG_ENV: &str = "ALGOHUB_TEST_DATABASE_URL";

impl Db {
    fn new(backend: Backend) -> Self {
        let admin_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                std::env::var(PG_ENV)
                    .ok()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| {
                        panic!("{PG_ENV} is not set: the PostgreSQL tests cannot run")
                    }),
            ),
        };
        Self(std::sync::Arc::new(DbInner {
            backend,
            dir: tempfile::tempdir().expect("temp dir"),
            admin_url,
            created: std::sync::Mutex::new(Vec::new()),
        }))
    }

    pub fn backend(&self) -> Backend {
        self.0.backend
    }

    /// The URL of a new, empty database: a file of its own (SQLite) or a
    /// database of its own on the test server (PostgreSQL). Servers started on
    /// the same URL share it, as nodes of one cluster do.
    pub async fn fresh_url(&self) -> String {
        let name = format!("algohub_t_{}", uuid::Uuid::new_v4().simple());
        match &self.0.admin_url {
            None => format!(
                "sqlite:{}",
                self.0.dir.path().join(format!("{name}.db")).display()
            ),
            Some(admin) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(admin)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                conn.close().await.ok();
                self.0.created.lock().expect("lock").push(name.clone());
                let (base, query) = match admin.split_once('?') {
                    Some((b, q)) => (b, format!("?{q}")),
                    None => (admin.as_str(), String::new()),
                };
                let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
                format!("{base}/{name}{query}")
            }
        }
    }

    /// Drops the database at `url` if this case made it on PostgreSQL.
    pub async fn drop_database(&self, url: &str) {
        let name = {
            let mut created = self.0.created.lock().expect("lock");
            let Some(i) = created.iter().position(|n| database_name(url) == n) else {
                return;
            };
            created.swap_remove(i)
        };
        self.drop_names(vec![name]).await;
    }

    /// Drops every PostgreSQL database this case made (connections and all).
    async fn drop_all(&self) {
        let names = std::mem::take(&mut *self.0.created.lock().expect("lock"));
        self.drop_names(names).await;
    }

    async fn drop_names(&self, names: Vec<String>) {
        let Some(admin) = &self.0.admin_url else {
            return;
        };
        if names.is_empty() {
            return;
        }
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("connect to PostgreSQL");
        for name in names {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .expect("drop database");
        }
        conn.close().await.ok();
    }
}

/// The database name in a PostgreSQL URL.
fn database_name(url: &str) -> &str {
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

/// Runs one case on a backend: the case runs in its own task, so that when
/// it fails the databases it made are still dropped before the failure is
/// raised.
pub async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let db = Db::new(backend);
    let outcome = tokio::spawn(case(db.clone())).await;
    db.drop_all().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// Turns the list of cases into `sqlite::<module>::<case>` and
/// `postgres::<module>::<case>` tests, and the PostgreSQL-only list into
/// `postgres_only::<module>::<case>`. Each case is written once, as
/// `async fn case(db: Db)`; attributes written before a case apply to its tests.
/// The PostgreSQL tests need `ALGOHUB_TEST_DATABASE_URL` when the test binary
/// is built (build.rs): without it they are listed as ignored, so the runner's
/// summary counts them, and nothing passes without having run.
macro_rules! api_tests {
    (
        both { $($module:ident: $($(#[$attr:meta])* $case:ident),* $(,)?;)* }
        postgres_only { $($pg_module:ident: $($pg_case:ident),* $(,)?;)* }
    ) => {
        mod sqlite {$(
            mod $module {$(
                #[tokio::test]
                $(#[$attr])*
                async fn $case() {
                    $crate::harness::run($crate::harness::Backend::Sqlite, $crate::$module::$case).await;
                }
            )*}
        )*}
        mod postgres {$(
            mod $module {$(
                #[tokio::test]
                #[cfg_attr(not(algohub_pg_tests), ignore = "ALGOHUB_TEST_DATABASE_URL was not set when the tests were built")]
                // (A case's own `ignore` may repeat this one when neither was set.)
                #[allow(unused_attributes)]
                $(#[$attr])*
                async fn $case() {
                    $crate::harness::run($crate::harness::Backend::Postgres, $crate::$module::$case).await;
                }
            )*}
        )*}
        mod postgres_only {$(
            mod $pg_module {$(
                #[tokio::test]
                #[cfg_attr(not(algohub_pg_tests), ignore = "ALGOHUB_TEST_DATABASE_URL was not set when the tests were built")]
                async fn $pg_case() {
                    $crate::harness::run($crate::harness::Backend::Postgres, $crate::$pg_module::$pg_case).await;
                }
            )*}
        )*}
    };
}
pub(crate) use api_tests;

impl Db {
    /// A new database holding a copy of the one at `url`, which no server may
    /// be running on: `CREATE DATABASE … TEMPLATE …` (PostgreSQL) or a copy of
    /// the file (SQLite). Recorded like `fresh_url`'s, so it is dropped too.
    pub async fn clone_database(&self, url: &str) -> String {
        let name = format!("algohub_t_{}", uuid::Uuid::new_v4().simple());
        match &self.0.admin_url {
            None => {
                let src = sqlite_path(url);
                let dst = self.0.dir.path().join(format!("{name}.db"));
                std::fs::copy(&src, &dst)
                    .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", src.display()));
                    if side.exists() {
                        std::fs::copy(&side, format!("{}{suffix}", dst.display()))
                            .unwrap_or_else(|e| panic!("copy {}: {e}", side.display()));
                    }
                }
                format!("sqlite:{}", dst.display())
            }
            Some(admin) => {
                use sqlx::Connection;
                let template = database_name(url).to_string();
                let mut conn = sqlx::PgConnection::connect(admin)
                    .await
                    .expect("connect to PostgreSQL");
                // The template must have no sessions; a server's pool that
                // just closed may take a moment to leave.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let res = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "CREATE DATABASE {name} TEMPLATE {template}"
                    )))
                    .execute(&mut conn)
                    .await;
                    match res {
                        Ok(_) => break,
                        Err(e)
                            if Instant::now() < deadline
                                && e.to_string().contains("being accessed") =>
                        {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("create database {name} from {template}: {e}"),
                    }
                }
                conn.close().await.ok();
                self.0.created.lock().expect("lock").push(name.clone());
                let (path, query) = match url.split_once('?') {
                    Some((p, q)) => (p, format!("?{q}")),
                    None => (url, String::new()),
                };
                let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
                format!("{base}/{name}{query}")
            }
        }
    }
}

/// The file of a `sqlite:` URL.
fn sqlite_path(url: &str) -> PathBuf {
    let rest = url.strip_prefix("sqlite:").expect("a sqlite: URL");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    PathBuf::from(rest.split_once('?').map_or(rest, |(p, _)| p))
}
