//! Nodes as real `algohub serve` processes, for tests that need the process
//! itself: a real SIGKILL (durability.rs), the process-wide metrics recorder
//! (metrics.rs).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an awaited event may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// One `algohub serve` process; killed (SIGKILL) when dropped.
pub(crate) struct Node {
    child: Child,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
}

impl Node {
    /// The process id of the node.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `algohub` binary on the data directory `dir` and the database `url`.
pub(crate) fn algohub(dir: &std::path::Path, url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_algohub"));
    c.env("ALGOHUB_DATA_DIR", dir)
        .env("ALGOHUB_DATABASE_URL", url)
        .env("ALGOHUB_LOG_LEVEL", "error")
        .env("ALGOHUB_HTTP_UPSTREAM_ALLOW_PRIVATE", "true")
        // As in `support::config_for`: test callers have no credits.
        .env("ALGOHUB_CREDIT_FLOOR_MICROCREDITS", "-1000000000000000")
        .current_dir(dir);
    c
}

/// Starts `algohub serve` on a free port with extra `ALGOHUB_*` settings and
/// waits until it is ready.
pub(crate) async fn start_node(
    dir: &std::path::Path,
    url: &str,
    settings: &[(&str, &str)],
) -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = algohub(dir, url)
        .arg("serve")
        .env("ALGOHUB_LISTEN", format!("127.0.0.1:{port}"))
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .expect("algohub serve starts");
    let node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };
    let start = Instant::now();
    while reqwest::get(format!("{}/readyz", node.base)).await.is_err() {
        assert!(start.elapsed() < DEADLINE, "the node never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node
}

/// Creates a user with the command line and returns a new key of theirs.
pub(crate) fn cli_user(dir: &std::path::Path, url: &str, name: &str, admin: bool) -> String {
    let mut create = algohub(dir, url);
    create
        .args(["admin", "create-user", "--username", name, "--email"])
        .arg(format!("{name}@example.com"));
    if admin {
        create.arg("--admin");
    }
    let st = create.stdout(Stdio::null()).status().unwrap();
    assert!(st.success(), "create-user {name}");
    let out = algohub(dir, url)
        .args(["admin", "create-key", "--username", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "create-key {name}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
