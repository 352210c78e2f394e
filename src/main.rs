//! The `portshare` command: parse arguments, load the config, serve until a
//! signal, drain.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use portshare::App;
use portshare::config::{Config, ConfigError};
use portshare::identity::TokenHash;
use portshare::tls::Terminator;

/// Exit code for a config that is missing or invalid.
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "portshare",
    version,
    about = "Decides, request by request, who may reach each forwarded port of a workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the share API and the forwarded ports on one listener.
    Serve {
        #[arg(long, value_name = "PATH")]
        config: PathBuf,
        /// How long in-flight requests may run after SIGTERM or SIGINT.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        drain_seconds: u64,
        /// Log format: human-readable text, or one JSON object per line.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a config file: exit 0 if valid, 2 with the reason if not.
    CheckConfig {
        #[arg(long, value_name = "PATH")]
        config: PathBuf,
    },
    /// Read one token from stdin; print the SHA-256 that `token_sha256` stores.
    HashToken,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            drain_seconds,
            log_format,
        } => {
            init_logging(log_format);
            serve(config, Duration::from_secs(drain_seconds))
        }
        Command::CheckConfig { config } => match Config::load(&config).and_then(|loaded| {
            // Everything serve would refuse, short of opening the store
            // (which would create it).
            load_tls(&loaded)?;
            portshare::proxy::upstream_clients(&loaded.timeouts, &loaded.upstream_tls)?;
            Ok(loaded)
        }) {
            Ok(_) => {
                println!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("portshare: {err}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::HashToken => {
            let mut input = String::new();
            if let Err(err) = std::io::stdin().read_to_string(&mut input) {
                eprintln!("portshare: cannot read the token from stdin: {err}");
                return ExitCode::FAILURE;
            }
            let token = input.trim_end_matches(['\r', '\n']);
            if token.is_empty() {
                eprintln!("portshare: no token on stdin");
                return ExitCode::FAILURE;
            }
            if token.contains(['\r', '\n']) {
                eprintln!("portshare: more than one line on stdin; a token is one line");
                return ExitCode::FAILURE;
            }
            println!("{}", TokenHash::of(token).to_hex());
            ExitCode::SUCCESS
        }
    }
}

/// The TLS terminator the config asks for, with its certificate loaded.
fn load_tls(config: &Config) -> Result<Option<Arc<Terminator>>, ConfigError> {
    match &config.tls {
        None => Ok(None),
        Some(files) => Ok(Some(Arc::new(Terminator::load(&files.cert, &files.key)?))),
    }
}

fn serve(path: PathBuf, drain: Duration) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("portshare: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("portshare: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let tls = match load_tls(&config) {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("portshare: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (listen, metrics_listen, plain_listen) =
        (config.listen, config.metrics_listen, config.plain_listen);
    let wildcard = config.wildcard.suffix().to_string();
    let store = config.store.describe();
    // Built before binding: an unusable CA bundle is a config error too.
    let app = match App::new(config) {
        Ok(app) => Arc::new(app),
        Err(err) => {
            eprintln!("portshare: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    app.follow_store();
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("portshare: cannot listen on {listen}: {err}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().map_or(listen, |addr| addr);
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %local, scheme, wildcard = %wildcard, store = %store, "portshare listening");
        let metrics_listener = match bind_extra(metrics_listen, "metrics_listen").await {
            Ok(listener) => listener,
            Err(code) => return code,
        };
        let plain_listener = match bind_extra(plain_listen, "plain_listen").await {
            Ok(listener) => listener,
            Err(code) => return code,
        };
        #[cfg(unix)]
        tokio::spawn(reload_on_sighup(app.clone(), path, tls.clone()));
        if let Some(tls) = &tls {
            tokio::spawn(tls.clone().watch(CERT_POLL));
        }
        let stopping = tokio_util::sync::CancellationToken::new();
        if let Some(listener) = metrics_listener {
            tokio::spawn(portshare::server::serve_probes(
                app.clone(),
                listener,
                stopping.clone().cancelled_owned(),
            ));
        }
        let plain = plain_listener.map(|listener| {
            tokio::spawn(portshare::server::serve(
                app.clone(),
                listener,
                None,
                stopping.clone().cancelled_owned(),
                drain,
            ))
        });
        let main = portshare::server::serve(
            app,
            listener,
            tls,
            stopping.clone().cancelled_owned(),
            drain,
        );
        let signal = async {
            shutdown_signal().await;
            stopping.cancel();
        };
        tokio::join!(main, signal);
        if let Some(plain) = plain {
            let _ = plain.await;
        }
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// SIGHUP reloads users, workspaces and agents from the config file. An
/// invalid file is refused with a logged reason and the rules in force stay.
#[cfg(unix)]
async fn reload_on_sighup(app: Arc<App>, path: PathBuf, tls: Option<Arc<Terminator>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGHUP; config reload is off");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(err) => tracing::error!(
                    reason = %err,
                    "TLS certificate reload refused; the certificate in use stays"
                ),
            }
        }
        match Config::load(&path) {
            Ok(config) => {
                let listen = app.config.load().listen;
                if config.listen != listen {
                    tracing::warn!(
                        old = %listen,
                        new = %config.listen,
                        "`listen` changed: it applies at the next restart"
                    );
                }
                app.replace_config(config);
                tracing::info!(path = %path.display(), "config reloaded");
            }
            Err(err) => {
                tracing::error!(reason = %err, "config reload refused; the previous config stays in force");
            }
        }
    }
}

/// How often the certificate files are checked for changes.
const CERT_POLL: Duration = Duration::from_secs(2);

/// Binds an optional extra listener (`plain_listen`, `metrics_listen`).
async fn bind_extra(
    address: Option<std::net::SocketAddr>,
    key: &str,
) -> Result<Option<tokio::net::TcpListener>, ExitCode> {
    let Some(address) = address else {
        return Ok(None);
    };
    match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => {
            tracing::info!(address = %address, key, "listening");
            Ok(Some(listener))
        }
        Err(err) => {
            eprintln!("portshare: cannot listen on {address} ({key}): {err}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
