//! What the browser tests stand on: chromedriver with a fresh headless
//! chromium per test, and algohub on a fresh SQLite database.

use algohub_core::services::CreateUser;
use fantoccini::{Client, ClientBuilder};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The workspace's `target/ui-screenshots/`.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// The first of `names` found on `PATH` (or as an absolute path).
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        let p = PathBuf::from(n);
        if p.is_absolute() {
            return p.is_file().then_some(p);
        }
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|c| c.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// algohub serving on a free loopback port, on a fresh SQLite database.
pub struct Hub {
    server: algohub::Server,
    _dir: tempfile::TempDir,
}

impl Hub {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = algohub::config::Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            database_url: format!("sqlite:{}", dir.path().join("algohub.db").display()),
            ..Default::default()
        };
        let server = algohub::Server::start(&config, None)
            .await
            .expect("algohub starts");
        Self { server, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    pub async fn user_with_password(&self, name: &str, password: &str) {
        self.server
            .hub
            .accounts
            .create_user_unchecked(
                &algohub_core::audit::AuditContext::cli(),
                CreateUser {
                    username: name.into(),
                    email: format!("{name}@example.com"),
                    full_name: name.into(),
                    password: Some(password.into()),
                    ..Default::default()
                },
            )
            .await
            .expect("user created");
    }
}

/// A headless chromium with a fresh profile, through its own chromedriver.
pub struct Browser {
    pub c: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn open() -> Self {
        let chromedriver = program(&["chromedriver", "/usr/lib/chromium/chromedriver"]).expect(
            "chromedriver is not installed: apt-get install -y chromium chromium-driver \
             (.ci/run does)",
        );
        let port = free_port();
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut options = serde_json::json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        if let Some(chromium) = program(&["chromium", "/usr/bin/chromium"]) {
            options["binary"] = serde_json::json!(chromium.display().to_string());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let c = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a browser session");
        Self {
            c,
            driver,
            _profile: profile,
        }
    }

    /// Saves the page as `target/ui-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.c.screenshot().await.expect("screenshot");
        std::fs::write(screenshots().join(format!("{name}.png")), png).expect("screenshot saved");
    }

    /// What every page must pass: its stylesheet loaded and applied (the CSP
    /// let it through), no inline style or script (which the CSP forbids),
    /// every input labelled.
    pub async fn check_page(&self) {
        let found = self
            .c
            .execute(
                "const css = [...document.styleSheets].filter(s => s.cssRules.length > 0).length;
                 const inline = document.querySelectorAll('[style], script:not([src])').length;
                 const unlabelled = [...document.querySelectorAll('input:not([type=hidden])')]
                     .filter(i => !i.labels || i.labels.length === 0).length;
                 const bg = getComputedStyle(document.documentElement).backgroundColor;
                 return [css, inline, unlabelled, bg];",
                vec![],
            )
            .await
            .expect("page checks ran");
        assert_eq!(
            found,
            serde_json::json!([1, 0, 0, "rgb(246, 248, 250)"]),
            "[stylesheets applied, inline styles or scripts, unlabelled inputs, background]"
        );
    }

    pub async fn close(mut self) {
        self.c.clone().close().await.expect("browser closed");
        let _ = self.driver.kill().await;
    }
}

/// Serves one HTML page on another loopback port (another origin); answers
/// its URL.
pub async fn serve_page(html: &str) -> String {
    use axum::response::Html;
    let html = html.to_string();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}
