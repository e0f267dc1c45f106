//! `algohub`: the command line. One clap enum; each admin subcommand is small.

use algohub::config::{Config, DEFAULT_TOML, LogFormat, Overrides, ServeOverrides};
use algohub::{BoxError, Server, open_store};
use algohub_core::services::{CreateUser, Hub};
use clap::{Parser, Subcommand};
use std::io::Read;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: algohub::ServerAllocator = algohub::ServerAllocator;

/// algohub: a self-hosted hub for publishing, calling and governing algorithms.
///
/// Configuration comes from defaults, then algohub.toml, then ALGOHUB_*
/// environment variables (ALGOHUB_<SETTING>, e.g. ALGOHUB_LISTEN), then flags
/// (--<setting>, e.g. --listen). `algohub config print-default` shows every
/// setting with its default and documentation.
#[derive(Parser)]
#[command(name = "algohub", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (SQLite under the data directory unless a database URL is given).
    #[command(
        after_help = "Each flag sets the setting of its name, which is also an \
        ALGOHUB_<SETTING> environment variable (--default-work-limit: \
        ALGOHUB_DEFAULT_WORK_LIMIT) and a key of algohub.toml; `algohub config \
        print-default` shows every setting with its default."
    )]
    Serve(Box<ServeOverrides>),
    /// Apply database migrations and exit.
    Migrate,
    /// Administration with direct database access.
    #[command(subcommand)]
    Admin(Admin),
    /// The audit trail, with direct database access.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Export data with direct database access.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCmd),
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verify the audit hash chain; exits 1 and names the first record that
    /// does not match (edited, deleted, inserted or moved records).
    Verify,
}

#[derive(Subcommand)]
enum ExportCmd {
    /// Every account (deleted ones excluded) as CSV, streamed page by page in
    /// constant memory: `algohub export users --csv > accounts.csv`.
    Users {
        /// Write CSV (the only format; required so scripts stay explicit).
        #[arg(long)]
        csv: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Create a user; with --password-stdin, the password is read from standard input.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Full name shown in the UI.
        #[arg(long, default_value = "")]
        full_name: String,
        /// Make the user a cluster admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API key for a user; prints only the key on standard output.
    CreateKey {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "")]
        label: String,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the documented default configuration file.
    PrintDefault,
}

/// Logs to standard error; the human format is coloured only when standard
/// error is a terminal (and `NO_COLOR` is not set), so files and pipes get
/// plain text.
fn init_logs(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(algohub::log_filter(level))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Config(ConfigCmd::PrintDefault) => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Serve(serve) => {
            let config = Config::resolve(&cli.overrides, &serve)?;
            init_logs(config.log_format, &config.log_level);
            tracing::info!(config = ?config, "starting algohub");
            let metrics = algohub::install_metrics()?;
            let server = Server::start(&config, Some(metrics)).await?;
            tracing::info!(addr = %server.addr, "listening");
            if config.log_format == LogFormat::Human {
                // For people at a terminal, whatever the log level; JSON
                // logs stay one JSON object a line (the event above says it).
                eprintln!("algohub listening on http://{}", server.addr);
            }
            let stop = server.stop_handle();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: finishing in-flight requests");
                let _ = stop.send(true);
            });
            server.wait().await?;
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Command::Migrate => {
            let config = Config::resolve(&cli.overrides, &ServeOverrides::default())?;
            init_logs(config.log_format, &config.log_level);
            let store = open_store(&config.database_url).await?;
            store.close().await;
            eprintln!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Audit(AuditCmd::Verify) => {
            let config = Config::resolve(&cli.overrides, &ServeOverrides::default())?;
            init_logs(config.log_format, "warn");
            let store = open_store(&config.database_url).await?;
            let hub = Hub::start(store.clone(), config.command_settings()).await?;
            let verdict = hub.audit.verify_audit_unchecked().await;
            store.close().await;
            let verdict = verdict?;
            match verdict.first_bad {
                None => {
                    println!("audit chain intact: {} records", verdict.checked);
                    Ok(())
                }
                Some(b) => Err(format!(
                    "audit chain broken at record {}: {} ({} records verified before it)",
                    b.id, b.reason, verdict.checked
                )
                .into()),
            }
        }
        Command::Export(ExportCmd::Users { csv, output }) => {
            if !csv {
                return Err("say which format: algohub export users --csv".into());
            }
            let config = Config::resolve(&cli.overrides, &ServeOverrides::default())?;
            init_logs(config.log_format, "warn");
            let store = open_store(&config.database_url).await?;
            let hub = Hub::start(store.clone(), config.command_settings()).await?;
            let result = export_users(&hub, output.as_deref()).await;
            store.close().await;
            result
        }
        Command::Admin(admin) => {
            let config = Config::resolve(&cli.overrides, &ServeOverrides::default())?;
            init_logs(
                config.log_format,
                if config.log_level == "info" {
                    "warn"
                } else {
                    &config.log_level
                },
            );
            let store = open_store(&config.database_url).await?;
            let hub = Hub::start(store.clone(), config.command_settings()).await?;
            let result = admin_command(&hub, admin).await;
            store.close().await;
            result
        }
    }
}

async fn export_users(hub: &Hub, output: Option<&std::path::Path>) -> Result<(), BoxError> {
    use std::io::Write;
    let sink: Box<dyn Write> = match output {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, sink);
    let mut export = hub.admin.export_users_csv_cli().await?;
    while let Some(chunk) = export.chunks.recv().await {
        out.write_all(&chunk?)?;
    }
    let rows = export.rows.await?;
    out.flush()?;
    eprintln!("exported {rows} accounts");
    Ok(())
}

async fn admin_command(hub: &Hub, admin: Admin) -> Result<(), BoxError> {
    match admin {
        Admin::CreateUser {
            username,
            email,
            full_name,
            admin,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                let line = s.lines().next().unwrap_or("").to_string();
                if line.is_empty() {
                    return Err("--password-stdin given but standard input had no password".into());
                }
                Some(line)
            } else {
                None
            };
            let user = hub
                .accounts
                .create_user_unchecked(
                    &algohub_core::audit::AuditContext::cli(),
                    CreateUser {
                        username,
                        email,
                        full_name,
                        password,
                        cluster_admin: admin,
                        ..Default::default()
                    },
                )
                .await?;
            eprintln!(
                "created user {} ({}){}",
                user.username,
                user.uuid,
                if user.cluster_admin {
                    ", cluster admin"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Admin::CreateKey { username, label } => {
            let (_, secret) = hub
                .keys
                .create_user_key_unchecked(&username, &label)
                .await?;
            println!("{}", secret.expose());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
