//! The `algohub` command line as scripted setups use it.

use crate::support::Db;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a step the test waits for may take before it fails: generous,
/// so that only a step that never happens fails on a slow, shared machine.
const DEADLINE: Duration = Duration::from_secs(60);

fn algohub(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_algohub"));
    c.env("ALGOHUB_DATA_DIR", dir)
        .env_remove("ALGOHUB_DATABASE_URL")
        .env("ALGOHUB_LOG_LEVEL", "warn")
        .current_dir(dir);
    c
}

#[test]
fn help_documents_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = algohub(dir.path()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "migrate", "admin", "config"] {
        assert!(text.contains(cmd), "--help mentions {cmd}:\n{text}");
    }
    let out = algohub(dir.path())
        .args(["admin", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("create-user") && text.contains("create-key"));
    let out = algohub(dir.path())
        .args(["config", "print-default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen = \"127.0.0.1:8080\""));
}

/// A server process, killed if a test fails before it stopped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An upstream that holds each request until told: `arrived` is notified
/// when a request comes in, which is answered once `release` is notified.
async fn held_upstream() -> (String, Arc<Notify>, Arc<Notify>) {
    use axum::routing::post;
    let (arrived, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let state = (arrived.clone(), release.clone());
    let app = axum::Router::new()
        .route(
            "/held",
            post(
                |axum::extract::State((arrived, release)): axum::extract::State<(
                    Arc<Notify>,
                    Arc<Notify>,
                )>| async move {
                    arrived.notify_one();
                    release.notified().await;
                    axum::Json(serde_json::json!({"held": "until released"}))
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), arrived, release)
}

#[test]
fn admin_commands_then_serve_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let st = algohub(dir.path()).arg("migrate").status().unwrap();
    assert!(st.success());
    assert!(
        dir.path().join("algohub.db").exists(),
        "SQLite file under the data directory"
    );

    let mut child = algohub(dir.path())
        .args([
            "admin",
            "create-user",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
            "--admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let again = algohub(dir.path())
        .args([
            "admin",
            "create-user",
            "--username",
            "OPS",
            "--email",
            "x@example.com",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already taken"));

    let out = algohub(dir.path())
        .args([
            "admin",
            "create-key",
            "--username",
            "ops",
            "--label",
            "setup",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap();
    let key = key.trim_end();
    assert_eq!(key.len(), 28, "stdout is only the key: {key:?}");
    assert!(key.starts_with("sim"));

    // Serve on a free port, call it with the key, stop with SIGTERM.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Logs as JSON (at info, so that requests are logged) into a file.
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Server(
        algohub(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--log-format", "json"])
            .env("ALGOHUB_LOG_LEVEL", "info")
            .env("ALGOHUB_HTTP_UPSTREAM_ALLOW_PRIVATE", "true")
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    rt.block_on(async {
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = client
            .get(format!("{base}/v1/users/ops"))
            .header("Authorization", format!("Simple {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("algohub_http_requests_total"), "{metrics}");
        assert!(metrics.contains("algohub_policy_decisions_total"));

        // A call still running when SIGTERM arrives gets its answer. Its
        // upstream holds it until the shutdown has begun, so it is running
        // then however slow the machine.
        let (upstream, arrived, release) = held_upstream().await;
        let auth = format!("Simple {key}");
        let send = |method: reqwest::Method, path: &str, body: Vec<u8>, ct: &str| {
            client
                .request(method, format!("{base}{path}"))
                .header("Authorization", &auth)
                .header("Content-Type", ct)
                .body(body)
        };
        let create = crate::algorithms::create_body("held");
        let r = send(
            reqwest::Method::POST,
            "/v1/algorithms/ops",
            create.to_string().into(),
            "application/json",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
        let def = serde_json::json!({"runtime": "http", "url": format!("{upstream}/held"), "timeout": 300});
        let r = send(
            reqwest::Method::PUT,
            "/v1/algorithms/ops/held/artifact",
            def.to_string().into(),
            "application/json",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
        let r = send(
            reqwest::Method::POST,
            "/v1/algorithms/ops/held/compile",
            b"{}".to_vec(),
            "application/json",
        )
        .send()
        .await
        .unwrap();
        let built: serde_json::Value = r.json().await.unwrap();
        let hash = built["version_info"]["git_hash"]
            .as_str()
            .expect("a build hash");
        let running = send(
            reqwest::Method::POST,
            &format!("/v1/algo/ops/held/{hash}"),
            b"null".to_vec(),
            "application/json",
        )
        .send();
        let running = tokio::spawn(running);
        tokio::time::timeout(DEADLINE, arrived.notified())
            .await
            .expect("the call reached its upstream");
        let st = Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        // Until the shutdown has begun: the server said so, and takes no new
        // connection.
        let start = Instant::now();
        loop {
            let said = std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("shutting down: finishing in-flight requests");
            let refused = reqwest::Client::new()
                .get(format!("{base}/healthz"))
                .send()
                .await
                .is_err();
            if said && refused {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no shutdown after SIGTERM (logged: {said}, refusing: {refused})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!running.is_finished(), "the call was answered before its upstream");
        release.notify_one();
        let answer = tokio::time::timeout(DEADLINE, running)
            .await
            .expect("the running call was answered")
            .unwrap()
            .expect("the running call was answered");
        assert_eq!(answer.status().as_u16(), 200);
        let answer: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(answer["result"]["held"], "until released", "{answer}");
    });
    let start = Instant::now();
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "clean exit after SIGTERM: {status}");
            break;
        }
        assert!(start.elapsed() < DEADLINE, "server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every log line is a JSON object; the requests above were logged.
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["fields"].is_object())
    );
    let position = |pred: &dyn Fn(&serde_json::Value) -> bool| lines.iter().position(pred);
    let route = |r: &'static str| move |l: &serde_json::Value| l["fields"]["route"] == r;
    assert!(position(&route("/v1/users/{username}")).is_some(), "{logs}");
    // The running call ended after the shutdown began, and was logged.
    let stopping =
        position(&|l| l["fields"]["message"] == "shutting down: finishing in-flight requests");
    let answered = position(&route("/v1/algo/{owner}/{algo}/{version}"));
    assert!(stopping.is_some() && answered > stopping, "{logs}");
}

/// The admin command line works on either database: `export users` on a
/// fresh one of the case's backend.
pub(crate) async fn export_users_as_csv(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url().await;
    let algohub = |dir: &std::path::Path| {
        let mut c = algohub(dir);
        c.env("ALGOHUB_DATABASE_URL", &url);
        c
    };
    for name in ["ops", "ann"] {
        let st = algohub(dir.path())
            .args(["admin", "create-user", "--username", name, "--email"])
            .arg(format!("{name}@example.com"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let out = algohub(dir.path())
        .args(["export", "users", "--csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id,username,email,"), "{text}");
    assert_eq!(lines.len(), 3, "oldest first: {text}");
    assert!(
        lines[1].contains(",ops,ops@example.com,") && lines[2].contains(",ann,"),
        "{text}"
    );
    let file = dir.path().join("accounts.csv");
    let st = algohub(dir.path())
        .args(["export", "users", "--csv", "--output"])
        .arg(&file)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let out = algohub(dir.path())
        .args(["export", "users"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a format is required");
    assert!(
        !dir.path().join("usage-journal").exists(),
        "one-shot commands keep no usage journal"
    );
}

#[test]
fn configuration_comes_from_defaults_then_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let db = |name: &str| dir.path().join(format!("{name}.db"));
    let url = |name: &str| format!("sqlite:{}", db(name).display());
    let migrate = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // The default: algohub.db under the data directory.
    migrate(algohub(dir.path()).arg("migrate"));
    assert!(db("algohub").exists());
    // algohub.toml in the working directory beats the default,
    let toml = format!("database_url = \"{}\"\n", url("file"));
    std::fs::write(dir.path().join("algohub.toml"), toml).unwrap();
    migrate(algohub(dir.path()).arg("migrate"));
    assert!(db("file").exists());
    // the environment beats the file,
    migrate(
        algohub(dir.path())
            .arg("migrate")
            .env("ALGOHUB_DATABASE_URL", url("env")),
    );
    assert!(db("env").exists());
    // and a flag beats the environment.
    migrate(
        algohub(dir.path())
            .args(["migrate", "--database-url", &url("flag")])
            .env("ALGOHUB_DATABASE_URL", url("unused")),
    );
    assert!(db("flag").exists());
    assert!(!db("unused").exists(), "the flag won over the environment");
}

/// Human-readable logs written to a file or a pipe carry no colour codes
/// (tracing's default would colour them wherever they go).
#[test]
fn human_logs_to_a_pipe_have_no_colour_codes() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server(
        algohub(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "human"])
            .env("ALGOHUB_LOG_LEVEL", "info")
            .env_remove("NO_COLOR")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = server.0.stderr.take().unwrap();
    // Read on a thread, so that a server that never says it listens fails
    // the test at the deadline instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let start = Instant::now();
    while !lines
        .iter()
        .any(|l: &String| l.starts_with("algohub listening on"))
    {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("the server did not say it listens: {lines:?}"),
        }
    }
    drop(server);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("INFO") && l.contains("starting algohub")),
        "info lines were logged: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "no escape codes: {lines:?}"
    );
}
