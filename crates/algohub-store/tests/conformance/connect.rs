//! Connecting to PostgreSQL as hosted services require it (TLS), and failing
//! at once, with the cause, when the server refuses the connection.
//!
//! The TLS test starts a throwaway PostgreSQL cluster of its own (TLS only,
//! `hostssl` in pg_hba.conf) with a certificate made at test time by the
//! `openssl` command. It needs the PostgreSQL server binaries (Debian's
//! `postgresql` package: /usr/lib/postgresql/<version>/bin) and `openssl`;
//! without them it fails, saying so, rather than passing without running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The bound for what should happen at once: generous, so that only a wait
/// (for a pool timeout, say) fails on a slow, shared machine.
const AT_ONCE: Duration = Duration::from_secs(20);

/// A loopback port nothing listens on (it was free a moment ago).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Runs a command to success, or fails the test with its output.
fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({cmd:?}): {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({cmd:?}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directory of the PostgreSQL server binaries (initdb, pg_ctl): the
/// newest /usr/lib/postgresql/<version>/bin, or the one on PATH.
fn postgres_bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    if let Some((_, bin)) = dirs.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "the PostgreSQL server binaries (initdb, pg_ctl) are needed for this test and \
                 were found neither under /usr/lib/postgresql/<version>/bin nor on PATH: \
                 install them (Debian: apt-get install postgresql)"
            )
        })
}

/// Whether this process runs as root (`id -u`); initdb refuses to.
fn running_as_root() -> bool {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .expect("`id -u` runs (coreutils)");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A PostgreSQL cluster that accepts only TLS connections on a loopback port,
/// with a server certificate signed by a test CA (`ca_cert`); stopped and
/// removed when dropped.
struct TlsCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    ca_cert: PathBuf,
    as_root: bool,
    /// Removed last (fields drop after `Drop::drop` has stopped the server).
    _dir: tempfile::TempDir,
}

impl TlsCluster {
    /// A command of the cluster's owner (`postgres` when this runs as root).
    fn command(&self, program: &str) -> Command {
        server_command(&self.bin, program, self.as_root, self._dir.path())
    }

    fn start() -> Self {
        let bin = postgres_bin_dir();
        let openssl_runs = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            openssl_runs,
            "the `openssl` command is needed to make this test's certificate \
             (Debian: apt-get install openssl)"
        );
        let as_root = running_as_root();
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).expect("certs directory");
        make_certificates(&certs);

        let data = dir.path().join("data");
        if as_root {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path()),
                "chown the cluster directory to postgres",
            );
        }
        run(
            server_command(&bin, "initdb", as_root, dir.path())
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "--no-sync", "--no-locale"])
                .args(["-E", "UTF8"]),
            "initdb",
        );
        for file in ["server.crt", "server.key"] {
            std::fs::copy(certs.join(file), data.join(file)).expect("copy the certificate");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("key permissions");
        let port = free_port();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        use std::io::Write;
        write!(
            conf,
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nssl = on\n\
             ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n",
            dir.path().display()
        )
        .expect("write postgresql.conf");
        // TLS or nothing: no `host` line, so a plain connection has no entry.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        if as_root {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data),
                "chown the data directory to postgres",
            );
        }
        let cluster = Self {
            bin,
            data,
            port,
            ca_cert: certs.join("ca.crt"),
            as_root,
            _dir: dir,
        };
        let log = cluster._dir.path().join("server.log");
        let started = cluster
            .command("pg_ctl")
            .arg("-D")
            .arg(&cluster.data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            started.status.success(),
            "the TLS cluster did not start: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres?<query>`.
    fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{query}",
            self.port
        )
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// `program` from the server binaries, run as `postgres` when this runs as
/// root (`runuser`), in `cwd` (one the server's owner may enter).
fn server_command(bin: &Path, program: &str, as_root: bool, cwd: &Path) -> Command {
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    };
    cmd.current_dir(cwd);
    cmd
}

/// A test CA (`ca.crt`) and a server certificate it signed for localhost and
/// 127.0.0.1 (`server.crt`, `server.key`), as hosted services hand out.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str], what: &str| {
        run(Command::new("openssl").args(args).current_dir(dir), what);
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        &[
            &["req", "-x509", "-nodes", "-days", "2"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=algohub test CA",
            ],
        ]
        .concat(),
        "openssl: the test CA",
    );
    openssl(
        &[
            &["req", "-nodes"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
        "openssl: the server's certificate request",
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )
    .expect("write server.ext");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
        "openssl: the server's certificate",
    );
}

/// Hosted PostgreSQL accepts TLS only: `sslmode=require` connects over TLS
/// and migrates, `verify-full` checks the certificate against `sslrootcert`,
/// and a plain connection is refused by the server.
/// Needs the PostgreSQL server binaries and openssl, as the other PostgreSQL
/// tests need a server: it runs when the tests were built with
/// `ALGOHUB_TEST_DATABASE_URL` (CI), and is listed as ignored otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(algohub_pg_tests),
    ignore = "ALGOHUB_TEST_DATABASE_URL was not set when the tests were built (this test also needs the PostgreSQL server binaries and openssl)"
)]
async fn postgres_over_tls_with_sslmode_require() {
    use algohub_core::store::Store;
    use sqlx::Row;
    let cluster = TlsCluster::start();

    let store = algohub_store::connect(&cluster.url("sslmode=require"))
        .await
        .unwrap_or_else(|e| panic!("connect with sslmode=require: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate over TLS: {e}"));
    let over_tls: bool = sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("read pg_stat_ssl")
        .get(0);
    assert!(over_tls, "the session is encrypted");
    store.close().await;

    let ca = cluster.ca_cert.display().to_string();
    let store =
        algohub_store::connect(&cluster.url(&format!("sslmode=verify-full&sslrootcert={ca}")))
            .await
            .unwrap_or_else(|e| panic!("connect with sslmode=verify-full and the CA: {e}"));
    store
        .migrate()
        .await
        .expect("migrations again (idempotent)");
    store.close().await;

    // Without the CA the certificate is not trusted.
    match algohub_store::connect(&cluster.url("sslmode=verify-full")).await {
        Ok(_) => panic!("verify-full without sslrootcert accepted an unknown CA"),
        Err(e) => assert!(e.to_string().contains("certificate"), "{e}"),
    }
    // And a connection without TLS is refused by the server.
    match tokio::time::timeout(
        AT_ONCE,
        algohub_store::connect(&cluster.url("sslmode=disable")),
    )
    .await
    {
        Err(_) => panic!("sslmode=disable still waited after {AT_ONCE:?}: it should fail at once"),
        Ok(Ok(_)) => panic!("a hostssl-only server accepted a connection without TLS"),
        Ok(Err(e)) => {
            let e = e.to_string();
            assert!(
                e.contains("no pg_hba.conf entry") && e.contains("no encryption"),
                "{e}"
            );
        }
    }
}

/// A database that refuses connections fails `connect` at once with the
/// cause, not after the pool's acquire timeout with "pool timed out".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_at_once_with_the_cause() {
    // A socket bound and never listening holds the port for the whole test:
    // connecting to it is refused, and nothing else (such as the TLS test's
    // cluster, which also asks for a free port) can take it meanwhile.
    let held = tokio::net::TcpSocket::new_v4().expect("a socket");
    held.bind("127.0.0.1:0".parse().unwrap())
        .expect("bind a free port");
    let port = held.local_addr().expect("local address").port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x");
    let outcome = tokio::time::timeout(AT_ONCE, algohub_store::connect(&url))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "connect to a closed port still waited after {AT_ONCE:?}: it should fail at once"
            )
        });
    match outcome {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => assert!(e.to_string().contains("connection refused"), "{e}"),
    }
    drop(held);
}
