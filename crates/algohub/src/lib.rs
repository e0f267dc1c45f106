#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! The algohub binary's library part: opening the store, starting the server,
//! background tasks. `main.rs` holds only the CLI; tests start servers in-process.

pub mod clock;
pub mod config;
pub mod executor;
pub mod files;
pub mod mail;
pub mod metering;
pub mod slots;
pub mod telemetry;

use algohub_core::services::{DataStorage, Executor, Hub, NodeParts, Settings};
use algohub_core::store::Store;
use config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The allocator the server binary runs with (and the benchmarks that measure
/// it): mimalloc, with thread-local free lists, instead of glibc's malloc,
/// which spent about a sixth of the call path's CPU time under load
/// (`perf` over `call-bench`). In-process tests run with the system
/// allocator; the tests that start the binary (compat, kill -9) run on this one.
pub use mimalloc::MiMalloc as ServerAllocator;

/// Installs the process-wide Prometheus recorder that `/metrics` serves
/// (latencies as histograms, every metric described: `telemetry`), with a
/// task (on the current tokio runtime) that drains histogram samples every 5 s
/// even when nobody scrapes.
pub fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    let metrics = telemetry::builder()?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    telemetry::describe();
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(metrics)
}

/// The log filter for `level`, a `tracing` filter such as `info` or
/// `warn,algohub_core=debug` (an invalid one falls back to `info`). The WASI
/// layer opens an info-level span for every system call a guest makes (about
/// a tenth of a wasm call's cost, and nothing an operator reads); they stay
/// off unless `level` names `wasmtime_wasi` itself.
pub fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    if level.contains("wasmtime_wasi") {
        return filter;
    }
    match "wasmtime_wasi=warn".parse() {
        Ok(quiet) => filter.add_directive(quiet),
        Err(_) => filter,
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the store named by the URL (`sqlite:` or `postgres:`) and migrates it.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, BoxError> {
    let store = algohub_store::connect(url)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", config::redact_url(url)))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migrations failed: {e}"))?;
    Ok(store)
}

/// Creates the data directory if it is missing and checks that files can be
/// written in it, so that a server that could not keep its files, journal or
/// SQLite database fails at start with the path and the cause.
pub fn prepare_data_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| data_dir_error(dir, &e))?;
    // A name of its own: nodes sharing the directory may start at once.
    let probe = dir.join(format!(
        ".algohub-write-check-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| data_dir_error(dir, &e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// "cannot use the data directory /srv/algohub: permission denied (os error 13)".
fn data_dir_error(dir: &std::path::Path, e: &std::io::Error) -> String {
    format!(
        "cannot use the data directory {}: {}",
        dir.display(),
        algohub_store::io_error_text(e)
    )
}

/// Starts the hub with this node's machinery: the given executor and file
/// storage; when `settings.metering` is on, a usage writer
/// (`metering::Meter`, journaling into `settings.usage_journal` when set);
/// on PostgreSQL, which several nodes may share, call slots held there
/// (`slots::SlotBatcher`) so that work limits hold cluster-wide.
pub async fn start_hub(
    store: Arc<dyn Store>,
    settings: Settings,
    executor: Option<Arc<dyn Executor>>,
    files: Option<Arc<dyn DataStorage>>,
) -> algohub_core::Result<Arc<Hub>> {
    clock::start();
    let usage = if settings.metering {
        let meter = metering::Meter::start(store.clone(), &settings).await?;
        Some(Arc::new(meter) as Arc<dyn algohub_core::services::UsageSink>)
    } else {
        None
    };
    let shared_slots = (store.backend() == algohub_core::store::Backend::Postgres).then(|| {
        slots::SlotBatcher::start(store.clone(), settings.call_slot_lease)
            as Arc<dyn algohub_core::services::SharedSlots>
    });
    let parts = NodeParts {
        executor,
        files,
        usage,
        shared_slots,
    };
    Hub::start_with(store, settings, parts).await
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), BoxError>>,
}

impl Server {
    /// Starts serving on `config.listen` (port 0 picks a free port).
    pub async fn start(
        config: &Config,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<Self, BoxError> {
        prepare_data_dir(&config.data_dir)?;
        let store = open_store(&config.database_url).await?;
        let executor =
            executor::HubExecutor::new(config.http_upstream_allow_private, &config.runtime())?;
        let files = files::FsStorage::new(config.data_dir.join("files"))?;
        let hub = start_hub(
            store.clone(),
            config.settings(),
            Some(Arc::new(executor)),
            Some(Arc::new(files)),
        )
        .await
        .map_err(|e| format!("cannot start the hub: {e}"))?;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let base_url = if config.base_url.ends_with(":0") {
            format!("http://{addr}")
        } else {
            config.base_url.clone()
        };
        let (tx, rx) = watch::channel(false);
        let mailer = match &config.smtp_url {
            Some(url) => Some(Arc::new(mail::SmtpMailer::new(url, &config.smtp_from)?)),
            None => {
                tracing::info!("smtp_url is not set: invitation emails wait in the outbox");
                None
            }
        };
        spawn_background(
            hub.clone(),
            Duration::from_millis(config.policy_poll_ms),
            rx.clone(),
        );
        if let Some(mailer) = mailer {
            spawn_mail_delivery(hub.clone(), mailer, base_url.clone(), rx.clone());
        }
        let app = algohub_http::app(hub.clone(), base_url, metrics, config.access_log);
        let mut stop = rx;
        let hub_for_close = hub.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|v| *v).await;
            };
            let served = algohub_http::serve(listener, app, shutdown).await;
            // Let the usage loader catch up, so the journal is all in the store.
            match hub_for_close.metering.settle_usage().await {
                Ok(()) => hub_for_close.metering.retire_usage_journal(),
                Err(e) => {
                    tracing::warn!(error = %e, "usage records stay in the journal until the next start");
                }
            }
            // Record key last-use times before the store closes.
            if let Err(e) = hub_for_close.keys.flush_key_uses().await {
                tracing::warn!(error = %e, "could not record key last-use times at shutdown");
            }
            if let Err(e) = hub_for_close.sign_in.flush_session_uses().await {
                tracing::warn!(error = %e, "could not record session last-use times at shutdown");
            }
            store.close().await;
            served?;
            Ok(())
        });
        Ok(Self {
            addr,
            hub,
            shutdown: tx,
            task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, closes the store.
    pub async fn stop(self) -> Result<(), BoxError> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| format!("server task failed: {e}"))?
    }

    /// Waits until the server ends (after `trigger_stop` or an error).
    pub async fn wait(self) -> Result<(), BoxError> {
        self.task
            .await
            .map_err(|e| format!("server task failed: {e}"))?
    }

    pub fn stop_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Sends queued emails every second while the server runs.
fn spawn_mail_delivery(
    hub: Arc<Hub>,
    mailer: Arc<mail::SmtpMailer>,
    base_url: String,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = hub.invitations.deliver_emails(mailer.as_ref(), &base_url).await {
                        metrics::counter!("algohub_store_errors_total").increment(1);
                        tracing::warn!(error = %e, "email delivery failed; retrying");
                    }
                }
                _ = stop.changed() => return,
            }
        }
    });
}

/// Policy sync (other nodes' changes) and housekeeping (expiry, key last-use).
fn spawn_background(hub: Arc<Hub>, poll: Duration, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut sync_tick = tokio::time::interval(poll);
        let mut maintenance_tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = sync_tick.tick() => {
                    if let Err(e) = hub.index.sync().await {
                        metrics::counter!("algohub_store_errors_total").increment(1);
                        tracing::warn!(error = %e, "policy sync failed; retrying");
                    }
                }
                _ = maintenance_tick.tick() => {
                    if let Err(e) = hub.run_maintenance().await {
                        metrics::counter!("algohub_store_errors_total").increment(1);
                        tracing::warn!(error = %e, "maintenance failed; retrying");
                    }
                }
                _ = stop.changed() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    /// Whether `level`'s filter lets an event of `target` at `at` through.
    fn lets_through(level: &str, target_is_wasi: bool, at: Level) -> bool {
        let subscriber = tracing_subscriber::registry().with(super::log_filter(level));
        tracing::subscriber::with_default(subscriber, || match (target_is_wasi, at) {
            (true, Level::INFO) => tracing::enabled!(target: "wasmtime_wasi::p1", Level::INFO),
            (true, _) => tracing::enabled!(target: "wasmtime_wasi::p1", Level::WARN),
            (false, Level::INFO) => tracing::enabled!(target: "algohub_core::x", Level::INFO),
            (false, _) => tracing::enabled!(target: "algohub_core::x", Level::DEBUG),
        })
    }

    /// Tests run as root, which may write anywhere: the permission case is
    /// checked here on the error as the system reports it (and end to end as
    /// another user in tests/api/startup.rs).
    #[test]
    fn data_dir_errors_name_the_path_and_the_cause() {
        let dir = std::path::Path::new("/srv/algohub-data");
        let denied = std::io::Error::from_raw_os_error(13);
        assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            super::data_dir_error(dir, &denied),
            "cannot use the data directory /srv/algohub-data: permission denied (os error 13)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = super::prepare_data_dir(&file.join("sub")).unwrap_err();
        assert!(
            err.contains(&file.join("sub").display().to_string())
                && err.contains("not a directory"),
            "{err}"
        );
        super::prepare_data_dir(&tmp.path().join("new")).unwrap();
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("new")).unwrap().collect();
        assert!(left.is_empty(), "the write check leaves nothing behind");
    }

    #[test]
    fn guest_system_call_spans_stay_off_unless_asked_for() {
        assert!(lets_through("info", false, Level::INFO));
        assert!(!lets_through("info", false, Level::DEBUG));
        assert!(!lets_through("info", true, Level::INFO));
        assert!(lets_through("info", true, Level::WARN));
        assert!(!lets_through("debug", true, Level::INFO));
        assert!(lets_through("debug", false, Level::DEBUG));
        assert!(lets_through("info,wasmtime_wasi=info", true, Level::INFO));
        // An invalid filter falls back to info.
        assert!(lets_through("algohub=loud", false, Level::INFO));
        assert!(!lets_through("algohub=loud", true, Level::INFO));
    }
}
