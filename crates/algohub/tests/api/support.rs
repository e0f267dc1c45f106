//! `TestApp`: a real server on 127.0.0.1:0 over a fresh database of the
//! case's backend (see harness.rs), with helpers to make users, keys and
//! requests, and copies of a stopped server for the route × role matrix.

pub use crate::harness::{Backend, Db};
use algohub::Server;
use algohub::config::Config;
use algohub_core::services::CreateUser;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct TestApp {
    pub server: Option<Server>,
    pub base: String,
    pub client: reqwest::Client,
    /// Kept alive for the server's lifetime (the database lives here).
    _dir: tempfile::TempDir,
    pub root: String,
    /// The database the server runs on (for tests that inspect or tamper with it).
    pub database_url: String,
}

pub fn config_for(dir: &std::path::Path, database_url: String) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: PathBuf::from(dir),
        database_url,
        base_url: "http://127.0.0.1:0".into(),
        log_format: algohub::config::LogFormat::Human,
        log_level: "warn".into(),
        access_log: true,
        max_orgs_per_user: None,
        invitation_ttl_days: 7,
        sudo_users_enabled: true,
        policy_poll_ms: 100,
        http_upstream_allow_private: true,
        default_work_limit: algohub_core::services::DEFAULT_WORK_LIMIT as u32,
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
        // Test algorithms charge 5 microcredits (`create_body`) and test users
        // start with none: these cases call without credits (as a cluster
        // with credit can); billing::calls_need_credits_above_the_floor tests
        // the default floor of 0.
        credit_floor_microcredits: -algohub::config::MOST_CREDITS,
        call_timeout_secs: 300,
        max_call_timeout_secs: 3000,
        wasm_fuel_per_sec: algohub_core::services::DEFAULT_WASM_FUEL_PER_SEC,
        wasm_instances: 128,
        wasm_instances_per_caller: 32,
        wasm_max_memory_mib: 256,
        wasm_memory_budget_mib: 0,
        smtp_url: None,
        smtp_from: "algohub <algohub@localhost>".into(),
    }
}

impl TestApp {
    /// A server on a fresh database of the case's backend.
    pub async fn new(db: &Db) -> Self {
        Self::with(db, |_| {}).await
    }

    /// Like `new`, with settings changed first.
    pub async fn with(db: &Db, tweak: impl FnOnce(&mut Config)) -> Self {
        let url = db.fresh_url().await;
        Self::on(url, tweak).await
    }

    /// A server on the database at `url` (nodes started on one URL share it).
    pub async fn on(url: String, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config_for(dir.path(), url);
        tweak(&mut config);
        let server = Server::start(&config, None).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        let mut app = Self {
            server: Some(server),
            base,
            client: reqwest::Client::new(),
            _dir: dir,
            root: String::new(),
            database_url: config.database_url.clone(),
        };
        app.root = app.make_user("root", true).await;
        app
    }

    /// A client of a server this process did not start (a node process at
    /// `base`); `hub()` and `make_user` are not available on it.
    pub fn remote(base: &str) -> Self {
        Self {
            server: None,
            base: base.to_string(),
            client: reqwest::Client::new(),
            _dir: tempfile::tempdir().expect("temp dir"),
            root: String::new(),
            database_url: String::new(),
        }
    }

    pub fn hub(&self) -> &std::sync::Arc<algohub_core::services::Hub> {
        &self.server.as_ref().expect("running").hub
    }

    /// Creates a user directly (as the CLI does) and returns a fresh full key.
    pub async fn make_user(&self, name: &str, admin: bool) -> String {
        self.hub()
            .accounts
            .create_user_unchecked(
                &algohub_core::audit::AuditContext::cli(),
                CreateUser {
                    username: name.into(),
                    email: format!("{name}@example.com"),
                    full_name: name.into(),
                    cluster_admin: admin,
                    ..Default::default()
                },
            )
            .await
            .expect("user created");
        let (_, secret) = self
            .hub()
            .keys
            .create_user_key_unchecked(name, "test")
            .await
            .expect("key");
        secret.expose().to_string()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.header("Authorization", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(key), None).await
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }
    pub async fn put(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Creates an org owned by the holder of `key`.
    pub async fn make_org(&self, name: &str, key: &str) {
        let (s, b) = self
            .post("/v1/organizations", key, serde_json::json!({"org_name": name, "org_label": name, "org_contact_name": "Ops", "org_email": format!("ops@{name}.test"), "type_id": "basic"}))
            .await;
        assert_eq!(s, 200, "org {name} created: {b}");
    }

    /// Adds a member with a role (cluster admin adds, then the role is set).
    pub async fn add_member(&self, org: &str, user: &str, role: &str) {
        let (s, b) = self
            .call(
                Method::PUT,
                &format!("/v1/organizations/{org}/members/{user}"),
                Some(&self.root),
                None,
            )
            .await;
        assert_eq!(s, 204, "{user} added to {org}: {b}");
        if role != "contributor" {
            let (s, b) = self
                .put(
                    &format!("/v1/organizations/{org}/members/{user}/role"),
                    &self.root,
                    serde_json::json!({"role": role}),
                )
                .await;
            assert_eq!(s, 200, "{user} role {role}: {b}");
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("clean stop");
        }
    }

    /// Stops the server and drops its database now rather than when the case
    /// ends (for cases that start many servers).
    pub async fn stop_and_drop(self, db: &Db) {
        let url = self.database_url.clone();
        self.stop().await;
        db.drop_database(&url).await;
    }
}

/// Asserts the common error shape and returns the reason slug.
pub fn error_reason(body: &Value) -> String {
    let e = body
        .get("error")
        .unwrap_or_else(|| panic!("error body expected, got {body}"));
    assert!(
        e.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert!(
        e.get("code").and_then(Value::as_u64).is_some(),
        "numeric code in {body}"
    );
    e["reason"].as_str().unwrap_or_default().to_string()
}

impl TestApp {
    /// Sends raw bytes with a Content-Type (or none); returns status,
    /// Content-Type and body bytes.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, String, Vec<u8>) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("Authorization", key)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ct, resp.bytes().await.expect("body").to_vec())
    }

    /// Like `send_raw`, parsing the answer as JSON.
    pub async fn send_json(
        &self,
        path: &str,
        key: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> (u16, Value) {
        let (s, _, b) = self
            .send_raw(Method::POST, path, key, content_type, body.into())
            .await;
        let v = serde_json::from_slice(&b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into_owned()));
        (s, v)
    }
}

/// Sends `n` requests at once (`request(i)` builds the i-th) and counts the
/// answers with status `ok`; any status but `ok` and `refused` fails the test.
pub async fn count_at_once(
    n: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
    ok: u16,
    refused: u16,
) -> usize {
    let sent: Vec<_> = (0..n)
        .map(|i| {
            let r = request(i);
            tokio::spawn(async move { r.send().await.expect("sent").status().as_u16() })
        })
        .collect();
    let mut oks = 0;
    for s in sent {
        match s.await.expect("answered") {
            s if s == ok => oks += 1,
            s if s == refused => {}
            other => panic!("a request sent at once answered {other}"),
        }
    }
    oks
}

/// Audit records with this action, polled until at least `want` of them are
/// there (reads are recorded in the background); fails after a minute.
pub async fn audit_records(app: &TestApp, action: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = app
            .get(&format!("/v1/admin/audit?action={action}"), &app.root)
            .await;
        assert_eq!(s, 200, "{v}");
        let records = v["results"].as_array().cloned().unwrap_or_default();
        if records.len() >= want {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{} `{action}` audit records after a minute, {want} expected: {v}",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Copies a directory tree (files and directories only).
pub fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).expect("create directory");
    for entry in std::fs::read_dir(src).expect("read directory") {
        let entry = entry.expect("directory entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// A stopped server's database and data directory, to start copies of it.
pub struct StoppedApp {
    pub database_url: String,
    pub root: String,
    dir: tempfile::TempDir,
}

impl TestApp {
    /// Stops the server cleanly and keeps its database and data directory.
    pub async fn stop_keeping_data(mut self) -> StoppedApp {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("clean stop");
        }
        StoppedApp {
            database_url: self.database_url,
            root: self.root,
            dir: self._dir,
        }
    }
}

impl StoppedApp {
    /// A server on a copy of this one's database and data directory (its
    /// users and keys included, so `root` and any other key stay valid).
    pub async fn start_copy(&self, db: &Db) -> TestApp {
        let url = db.clone_database(&self.database_url).await;
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(self.dir.path(), dir.path());
        let config = config_for(dir.path(), url);
        let server = Server::start(&config, None).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        TestApp {
            server: Some(server),
            base,
            client: reqwest::Client::new(),
            _dir: dir,
            root: self.root.clone(),
            database_url: config.database_url.clone(),
        }
    }

    /// Drops the database now (its data directory goes with `self`).
    pub async fn drop_database(self, db: &Db) {
        db.drop_database(&self.database_url).await;
    }
}
