//! The `algohub` command line as scripted setups use it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let mut server = algohub(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
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
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "server did not start"
            );
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
    });
    let st = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let start = Instant::now();
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "clean exit after SIGTERM: {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn export_users_as_csv() {
    let dir = tempfile::tempdir().unwrap();
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
