//! The targets call-bench loads besides nginx: the bare handler, algohub as
//! `algohub serve` runs it (with alice's public echo algorithm), and a second
//! algohub node without metering on the same database.

use algohub::config::Config;
use algohub_core::services::CreateUser;
use std::path::Path;

pub async fn start_bare() -> Result<String, String> {
    use axum::routing::post;
    let app =
        axum::Router::new().route("/echo", post(|body: axum::body::Bytes| async move { body }));
    serve_on_loopback(app, "/echo").await
}

/// Serves `app` on a free loopback port until the process ends; returns the
/// URL of `path` there.
pub async fn serve_on_loopback(app: axum::Router, path: &str) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}{path}"))
}

/// The configuration of the algohub under test: a fresh SQLite file in `dir`.
fn bench_config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        database_url: format!("sqlite:{}", dir.join("algohub.db").display()),
        base_url: "http://127.0.0.1:0".into(),
        log_format: algohub::config::LogFormat::Human,
        log_level: "info".into(),
        // As the nginx beside it runs with `access_log off`.
        access_log: false,
        max_orgs_per_user: None,
        invitation_ttl_days: 7,
        sudo_users_enabled: true,
        policy_poll_ms: 250,
        http_upstream_allow_private: false,
        default_work_limit: 1_000_000,
        call_slot_lease_secs: 30,
        metering_fsync: false,
        metering_max_backlog: 1_000_000,
        max_impersonation_minutes: 60,
        max_super_powers_minutes: 60,
        allow_impersonating_admins: false,
        max_minted_key_hours: 168,
        session_idle_minutes: 60,
        session_lifetime_hours: 12,
        data_quota_mib: algohub_core::services::DEFAULT_DATA_QUOTA_MIB,
        max_royalty_microcredits: algohub_core::services::DEFAULT_MAX_ROYALTY_MICROCREDITS,
        credit_floor_microcredits: 0,
        call_timeout_secs: 300,
        max_call_timeout_secs: 3000,
        wasm_fuel_per_sec: algohub_core::services::DEFAULT_WASM_FUEL_PER_SEC,
        wasm_instances: algohub_runtime::DEFAULT_MAX_INSTANCES,
        wasm_instances_per_caller: algohub_runtime::DEFAULT_INSTANCES_PER_CALLER,
        wasm_max_memory_mib: (algohub_runtime::DEFAULT_MAX_MEMORY_BYTES >> 20) as u32,
        wasm_memory_budget_mib: 0,
        smtp_url: None,
        smtp_from: "algohub <algohub@localhost>".into(),
    }
}

/// Starts algohub (the server as `algohub serve` runs it) on a fresh SQLite
/// file with alice's public echo algorithm: (server, call URL, alice's key).
pub async fn start_algohub(dir: &Path) -> Result<(algohub::Server, String, String), String> {
    let metrics = observe_as_serve()?;
    let server = algohub::Server::start(&bench_config(dir), Some(metrics))
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://{}", server.addr);
    let key = publish_echo(&server.hub, &base).await?;
    Ok((server, format!("{base}/v1/algo/alice/echo"), key))
}

/// What `algohub serve` sets up beside the server: its Prometheus recorder
/// and an info-level log subscriber, writing here to /dev/null (one `write`
/// per event, as to stderr there).
fn observe_as_serve() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    let metrics = algohub::install_metrics()?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(algohub::log_filter("info"))
        .with_writer(std::sync::Mutex::new(null))
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    Ok(metrics)
}

/// A second algohub node on the same database with metering switched off
/// (every real node meters; this one exists to show what durable metering
/// costs over HTTP): the hub built from the same configuration, executor and
/// file storage with `metering: false`, served by the same router, so the
/// same key calls the same algorithm. It serves until the process ends. Returns its call URL.
pub async fn start_unmetered(dir: &Path) -> Result<String, String> {
    let config = bench_config(dir);
    let store = algohub::open_store(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let executor =
        algohub::executor::HubExecutor::new(false, &config.runtime()).map_err(|e| e.to_string())?;
    let settings = algohub_core::services::Settings {
        metering: false,
        usage_journal: None,
        ..config.settings()
    };
    let files =
        algohub::files::FsStorage::new(config.data_dir.join("files")).map_err(|e| e.to_string())?;
    let hub = algohub::start_hub(
        store,
        settings,
        Some(std::sync::Arc::new(executor)),
        Some(std::sync::Arc::new(files)),
    )
    .await
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    let app = algohub_http::app(hub, base.clone(), None, false);
    tokio::spawn(algohub_http::serve(
        listener,
        app,
        std::future::pending::<()>(),
    ));
    Ok(format!("{base}/v1/algo/alice/echo"))
}

/// Creates alice with a key and publishes her echo algorithm (public) through
/// the HTTP API at `base`; returns her key.
async fn publish_echo(hub: &algohub_core::services::Hub, base: &str) -> Result<String, String> {
    hub.accounts
        .create_user_unchecked(
            &algohub_core::audit::AuditContext::cli(),
            CreateUser {
                username: "alice".into(),
                email: "alice@example.com".into(),
                full_name: "Alice".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let (_, secret) = hub
        .keys
        .create_user_key_unchecked("alice", "bench")
        .await
        .map_err(|e| e.to_string())?;
    let key = secret.expose().to_string();
    let client = reqwest::Client::new();
    let steps = [
        (
            format!("{base}/v1/algorithms/alice"),
            serde_json::json!({"name": "echo", "details": {"label": "Echo"},
                "settings": {"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false}}),
        ),
        (
            format!("{base}/v1/algorithms/alice/echo/compile"),
            serde_json::json!({}),
        ),
        (
            format!("{base}/v1/algorithms/alice/echo/versions"),
            serde_json::json!({"settings": {"algorithm_callability": "public"}, "version_info": {"version_type": "major"}}),
        ),
    ];
    for (url, body) in steps {
        let resp = client
            .post(&url)
            .header("Authorization", &key)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{url}: {}", resp.text().await.unwrap_or_default()));
        }
    }
    Ok(key)
}
