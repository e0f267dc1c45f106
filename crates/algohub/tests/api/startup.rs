//! Start-up failures an operator must be able to act on: the binary exits
//! non-zero at once, and standard error says what is wrong and where.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The bound for a start that should fail at once: generous, so only a
/// start that waits (for a pool timeout, say) fails on a slow, shared machine.
const AT_ONCE: Duration = Duration::from_secs(20);

fn algohub(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_algohub"));
    c.env("ALGOHUB_DATA_DIR", dir)
        .env_remove("ALGOHUB_DATABASE_URL")
        .env("ALGOHUB_LOG_LEVEL", "warn")
        .env("ALGOHUB_LISTEN", "127.0.0.1:0")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs the command to its end, which must come within `AT_ONCE` (it is
/// killed and the test fails otherwise); returns its output.
fn run_at_once(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd.spawn().expect("start algohub");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait for algohub").is_some() {
            return child.wait_with_output().expect("algohub output");
        }
        if started.elapsed() > AT_ONCE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("algohub output");
            panic!(
                "`{what}` still ran after {AT_ONCE:?}; it should fail at once. stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a failed run whose standard error contains every one of `wanted`.
fn assert_fails_saying(out: &Output, what: &str, wanted: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "`{what}` should fail; it succeeded. stderr:\n{stderr}"
    );
    for w in wanted {
        assert!(
            stderr.contains(w),
            "`{what}`: stderr should contain {w:?}:\n{stderr}"
        );
    }
}

/// A loopback port nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

#[test]
fn migrate_and_serve_fail_at_once_when_the_database_refuses_connections() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://postgres:secret@127.0.0.1:{}/x", closed_port());
    for command in ["migrate", "serve"] {
        let mut cmd = algohub(dir.path());
        cmd.arg(command).env("ALGOHUB_DATABASE_URL", &url);
        let out = run_at_once(cmd, command);
        assert_fails_saying(&out, command, &["connection refused", "127.0.0.1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("secret"), "password redacted:\n{stderr}");
    }
}

#[test]
fn an_unusable_data_directory_is_named_with_the_cause() {
    // Root may write anywhere, so the cause here is "not a directory": the
    // data directory lies under a regular file. (Permission denied: below.)
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let data_dir = file.join("data");
    for command in ["migrate", "serve"] {
        let mut cmd = algohub(dir.path());
        cmd.arg(command).env("ALGOHUB_DATA_DIR", &data_dir);
        let out = run_at_once(cmd, command);
        assert_fails_saying(
            &out,
            command,
            &[&data_dir.display().to_string(), "not a directory"],
        );
    }
}

/// Whether this process runs as root (`id -u`).
fn running_as_root() -> bool {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .expect("`id -u` runs (coreutils)");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn a_read_only_data_directory_says_permission_denied() {
    // Root bypasses file permissions: as root, algohub runs as `nobody`
    // (setpriv, util-linux), so the directory's permissions apply.
    let as_root = running_as_root();
    let command_as_user = |dir: &Path| {
        let mut cmd = algohub(dir);
        if as_root {
            let program = cmd.get_program().to_owned();
            let mut wrapped = Command::new("setpriv");
            wrapped
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(program);
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            wrapped
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd = wrapped;
        }
        cmd
    };
    let dir = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), &read_only] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let mut check = command_as_user(dir.path());
    check.arg("--version");
    let out = check.output().unwrap_or_else(|e| {
        panic!(
            "cannot run algohub as another user (setpriv from util-linux is needed as root): {e}"
        )
    });
    assert!(
        out.status.success(),
        "algohub must run as nobody (its path readable by all): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The data directory exists but is read-only, or would be made in one.
    for data_dir in [read_only.clone(), read_only.join("data")] {
        for command in ["migrate", "serve"] {
            let mut cmd = command_as_user(dir.path());
            cmd.arg(command).env("ALGOHUB_DATA_DIR", &data_dir);
            let out = run_at_once(cmd, command);
            assert_fails_saying(
                &out,
                command,
                &[&data_dir.display().to_string(), "permission denied"],
            );
        }
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}
