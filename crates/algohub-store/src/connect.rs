//! Opening a store from a URL: the backend is picked from the scheme, the pool is
//! configured per dialect, and the embedded migrations are run on request.
//!
//! Design choice: SQLite settings (WAL, foreign keys, busy timeout, synchronous)
//! are applied per connection in `after_connect`, because the `Any` driver builds
//! SQLite options from the URL alone and the URL cannot carry pragmas.
//!
//! Design choice: a PostgreSQL store opens one connection of its own before the
//! pool, and fails with that connection's error. The pool retries a refused
//! connection until its acquire timeout and then reports only "pool timed out",
//! which is right for a running server whose database restarts but hides the
//! cause at start-up ("connection refused", a TLS or pg_hba.conf refusal).
//! TLS is rustls with ring (`sslmode=require`, `verify-ca`, `verify-full` with
//! `sslrootcert=`), as sqlx's `tls-rustls-ring-webpki` feature builds it.

use crate::SqlStore;
use crate::db::db_err;
use algohub_core::store::{StoreError, StoreResult};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use std::time::Duration;

/// How long a pooled query waits for a connection (the pool retries a refused
/// connection meanwhile, so a running server rides out a database restart).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the first PostgreSQL connection may take (a host that drops packets
/// instead of refusing them); a refused connection fails at once.
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Picks the dialect from a database URL's scheme.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Other(format!(
                "unsupported database URL {:?}: use sqlite:PATH or postgres://...",
                redact(url)
            )))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The embedded migrations for this dialect.
    pub fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// Connects to `sqlite:PATH` (the file and its directory are created when
/// missing; `sqlite::memory:` gives a private in-memory database) or
/// `postgres://...` / `postgresql://...`. Does not run migrations: call
/// [`SqlStore::migrate`].
pub async fn connect(url: &str) -> Result<Arc<SqlStore>, StoreError> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::from_url(url)?;
    let mut sqlite_file = None;
    let pool = match dialect {
        Dialect::Sqlite => {
            let (normalized, in_memory) = sqlite_url(url)?;
            if !in_memory {
                sqlite_file = normalized
                    .strip_prefix("sqlite:")
                    .and_then(|rest| rest.split('?').next())
                    .map(std::path::PathBuf::from);
            }
            connect_sqlite(url).await?
        }
        Dialect::Postgres => {
            first_postgres_connection(url).await?;
            AnyPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(url)
                .await
                .map_err(connect_err)?
        }
    };
    Ok(Arc::new(SqlStore {
        pool,
        dialect,
        write_lock: tokio::sync::Mutex::new(()),
        max_orgs_per_user: std::sync::atomic::AtomicU32::new(0),
        sqlite_file,
        usage_conn: Default::default(),
        durable_usage: Default::default(),
    }))
}

const SQLITE_PRAGMAS: [&str; 4] = [
    // First, so the others wait for a lock instead of failing.
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];

async fn connect_sqlite(url: &str) -> StoreResult<sqlx::AnyPool> {
    let (url, in_memory) = sqlite_url(url)?;
    let options = AnyPoolOptions::new().after_connect(|conn, _meta| {
        Box::pin(async move {
            for pragma in SQLITE_PRAGMAS {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
            Ok(())
        })
    });
    // An in-memory database lives as long as its one connection: keep exactly one.
    let options = if in_memory {
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        options.max_connections(8)
    };
    options
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(&url)
        .await
        .map_err(db_err)
}

/// Opens (and closes) one PostgreSQL connection, so that start-up fails at once
/// with the cause. Retries only while the server says it is starting up.
async fn first_postgres_connection(url: &str) -> StoreResult<()> {
    use sqlx::Connection;
    const STARTING_UP_RETRY: Duration = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + FIRST_CONNECT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, sqlx::AnyConnection::connect(url)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            // cannot_connect_now: the database system is starting up (reported
            // as such when it still is at the deadline).
            Ok(Err(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some("57P03")
                    && tokio::time::Instant::now() + STARTING_UP_RETRY < deadline =>
            {
                tokio::time::sleep(STARTING_UP_RETRY).await;
            }
            Ok(Err(e)) => return Err(connect_err(e)),
            Err(_) => {
                return Err(StoreError::Other(format!(
                    "no connection to the database within {} s (is the host reachable?)",
                    FIRST_CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
    }
}

/// A connection error with its cause: an I/O error reads as the operating
/// system's ("connection refused (os error 111)").
fn connect_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(io) => {
            let hint = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "; is PostgreSQL running and listening on that host and port?"
                }
                _ => "",
            };
            StoreError::Other(format!(
                "cannot connect to the database: {}{hint}",
                io_error_text(io)
            ))
        }
        _ => db_err(e),
    }
}

/// An I/O error as one lower-case phrase, e.g. "permission denied (os error 13)".
pub fn io_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    if e.raw_os_error().is_none() {
        return text;
    }
    // The operating system's message, capitalized as a sentence: "Permission denied".
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Normalizes a SQLite URL to `sqlite:PATH?mode=rwc...`, creating the parent
/// directory of a file database. Returns the URL and whether it is in memory.
fn sqlite_url(url: &str) -> StoreResult<(String, bool)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, params) = match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    };
    let in_memory =
        path.is_empty() || path == ":memory:" || params.split('&').any(|p| p == "mode=memory");
    if in_memory {
        return Ok((url.to_string(), true));
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Other(format!(
                "cannot create the directory {}: {}",
                parent.display(),
                io_error_text(&e)
            ))
        })?;
    }
    let mut params: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    // SQLite says only "unable to open database file": open it here first, so
    // that an unwritable file or directory is reported with its path and cause.
    let writable = match params.iter().find_map(|p| p.strip_prefix("mode=")) {
        Some("rwc") => Some(true),
        Some("rw") => Some(false),
        _ => None,
    };
    if let Some(create) = writable {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                StoreError::Other(format!(
                    "cannot open the SQLite database {path} for writing: {}",
                    io_error_text(&e)
                ))
            })?;
    }
    Ok((format!("sqlite:{path}?{}", params.join("&")), false))
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl SqlStore {
    /// Runs the embedded migrations for this dialect (idempotent).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.dialect
            .migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_normalized() {
        let dir = std::env::temp_dir().join(format!("algohub-url-{}", uuid::Uuid::new_v4()));
        let file = dir.join("sub").join("db.sqlite");
        let url = format!("sqlite://{}", file.display());
        let (normalized, mem) = sqlite_url(&url).unwrap_or_else(|e| panic!("{e}"));
        assert!(!mem);
        assert_eq!(normalized, format!("sqlite:{}?mode=rwc", file.display()));
        assert!(file.parent().is_some_and(|p| p.is_dir()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(sqlite_url("sqlite::memory:").is_ok_and(|(_, mem)| mem));
        assert!(sqlite_url("sqlite:x.db?mode=ro").is_ok_and(|(u, _)| u == "sqlite:x.db?mode=ro"));
    }

    #[test]
    fn dialects_and_redaction() {
        assert_eq!(
            Dialect::from_url("postgresql://h/db").ok(),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("sqlite:x.db").ok(), Some(Dialect::Sqlite));
        assert!(Dialect::from_url("mysql://h/db").is_err());
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn io_errors_read_as_one_phrase() {
        use std::io::Error;
        // EACCES and ECONNREFUSED on Linux.
        assert_eq!(
            io_error_text(&Error::from_raw_os_error(13)),
            "permission denied (os error 13)"
        );
        assert_eq!(
            io_error_text(&Error::from_raw_os_error(111)),
            "connection refused (os error 111)"
        );
        assert_eq!(io_error_text(&Error::other("Custom text")), "Custom text");
    }

    #[test]
    fn an_unwritable_sqlite_file_is_named() {
        let dir = std::env::temp_dir().join(format!("algohub-url-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        // A directory where the database file should be: cannot be opened for
        // writing, whoever runs the test (root included).
        let file = dir.join("db.sqlite");
        std::fs::create_dir(&file).unwrap_or_else(|e| panic!("{e}"));
        let err = sqlite_url(&format!("sqlite:{}", file.display()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            err.contains(&file.display().to_string()) && err.contains("is a directory"),
            "{err}"
        );
    }
}
