//! `ssl-coordinator`: the control-plane server.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use ssl_coordinator::auth::parse_token_file;
use ssl_coordinator::checkpoints::CheckpointRoot;
use ssl_coordinator::scheduler::SchedulerConfig;
use ssl_coordinator::server::{AuthConfig, ServerConfig, TlsConfig, serve};

/// Control plane of the SSL training service: accepts, stores and tracks pretraining jobs.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to serve gRPC on.
    #[arg(long, env = "SSL_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,

    /// Folder for local state; contains the default SQLite database.
    #[arg(long, env = "SSL_DATA_DIR", default_value = "ssl-data")]
    data_dir: PathBuf,

    /// Job store: `postgres://USER:PASSWORD@HOST/DB` or `sqlite://PATH`.
    /// [default: sqlite://DATA_DIR/coordinator.db]
    #[arg(long, env = "SSL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// File with the accepted API tokens, one per line (`#` starts a comment).
    #[arg(long, env = "SSL_TOKEN_FILE")]
    token_file: Option<PathBuf>,

    /// Accepted API tokens, comma-separated; added to those of --token-file.
    #[arg(long = "tokens", env = "SSL_API_TOKENS", hide_env_values = true, value_delimiter = ',', hide = true)]
    tokens: Vec<String>,

    /// File with the accepted worker join tokens, one per line (`#` starts a comment).
    /// Without any join token, workers cannot register.
    #[arg(long, env = "SSL_JOIN_TOKEN_FILE")]
    join_token_file: Option<PathBuf>,

    /// Accepted worker join tokens, comma-separated; added to those of --join-token-file.
    #[arg(long = "join-tokens", env = "SSL_JOIN_TOKENS", hide_env_values = true, value_delimiter = ',', hide = true)]
    join_tokens: Vec<String>,

    /// Serve without authentication. Anyone who can reach --listen can then submit
    /// and cancel jobs, and register workers unless join tokens are configured.
    #[arg(long)]
    insecure: bool,

    /// PEM certificate chain; with --tls-key, serves TLS.
    #[arg(long, env = "SSL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "SSL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// File to write the bound gRPC address to (`IP:PORT`) once the coordinator
    /// listens; with `--listen 127.0.0.1:0`, it tells a launcher which port was picked.
    #[arg(long, value_name = "FILE")]
    address_file: Option<PathBuf>,

    /// Address to serve Prometheus metrics on, at `/metrics`, such as `0.0.0.0:9464`.
    /// The listener has no authentication. Without it, no metrics are served.
    #[arg(long, env = "SSL_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Storage URI that workers write checkpoints under, one folder per job:
    /// `file:///ABSOLUTE/PATH` or `s3://BUCKET[/PREFIX]`. S3 settings and credentials
    /// come from the workers' `AWS_*` environment variables.
    /// [default: file://ABSOLUTE_DATA_DIR/checkpoints]
    #[arg(long, env = "SSL_CHECKPOINT_ROOT", value_name = "URI", value_parser = parse_checkpoint_root)]
    checkpoint_root: Option<CheckpointRoot>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    let _tracing = match ssl_telemetry::init_tracing("ssl-coordinator") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };

    let config = match server_config(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "coordinator failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args, mut config: ServerConfig) -> anyhow::Result<()> {
    let listen = args.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("failed to listen on {listen}"))?;
    if let Some(metrics_listen) = args.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(metrics_listen)
            .await
            .with_context(|| format!("failed to listen on --metrics-listen {metrics_listen}"))?;
        config.metrics_listener = Some(metrics_listener);
    }
    if let Some(path) = args.address_file.as_deref() {
        write_address_file(path, listener.local_addr()?)?;
    }
    serve(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Writes `address` to `path` through a temporary file and a rename, so that a reader
/// never sees a partial address.
fn write_address_file(path: &Path, address: SocketAddr) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, address.to_string())
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write --address-file {}", path.display()))
}

/// Builds the server configuration from the arguments, reading token and TLS files.
fn server_config(args: &Args) -> anyhow::Result<ServerConfig> {
    let tokens = read_tokens(&args.tokens, args.token_file.as_deref(), "--token-file")?;
    let join_tokens = read_tokens(&args.join_tokens, args.join_token_file.as_deref(), "--join-token-file")?;

    let auth = match (tokens.is_empty(), args.insecure) {
        (false, true) => bail!("--insecure conflicts with the configured API tokens; drop one of them"),
        (false, false) => AuthConfig::Tokens(tokens),
        (true, true) => {
            tracing::warn!("authentication is off (--insecure): anyone who can reach the listen address can submit and cancel jobs");
            AuthConfig::Insecure
        }
        (true, false) => bail!(
            "no API token configured; pass --token-file FILE or set SSL_API_TOKENS, \
             or pass --insecure to serve without authentication"
        ),
    };

    let join_auth = match (join_tokens.is_empty(), args.insecure) {
        (false, _) => AuthConfig::Tokens(join_tokens),
        (true, true) => AuthConfig::Insecure,
        (true, false) => {
            tracing::warn!("no join token configured; workers cannot register until one is set with --join-token-file");
            AuthConfig::Tokens(Vec::new())
        }
    };

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig {
            cert_pem: std::fs::read(cert).with_context(|| format!("cannot read --tls-cert {}", cert.display()))?,
            key_pem: std::fs::read(key).with_context(|| format!("cannot read --tls-key {}", key.display()))?,
        }),
        _ => None,
    };

    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", args.data_dir.join("coordinator.db").display()),
    };
    let checkpoint_root = match &args.checkpoint_root {
        Some(root) => root.clone(),
        None => default_checkpoint_root(&args.data_dir)?,
    };
    Ok(ServerConfig {
        database_url,
        auth,
        join_auth,
        scheduler: SchedulerConfig::default(),
        tls,
        checkpoint_root,
        metrics_listener: None,
    })
}

/// Parses `--checkpoint-root`. clap reports an error as a usage error, with exit status 2.
fn parse_checkpoint_root(value: &str) -> Result<CheckpointRoot, String> {
    CheckpointRoot::parse(value).map_err(|error| error.to_string())
}

/// Returns `file://{data_dir}/checkpoints` with `data_dir` made absolute against
/// the working folder, without `.` or `..` segments.
fn default_checkpoint_root(data_dir: &Path) -> anyhow::Result<CheckpointRoot> {
    let absolute = std::path::absolute(data_dir).with_context(|| format!("cannot resolve --data-dir {}", data_dir.display()))?;
    let mut folder = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                folder.pop();
            }
            Component::CurDir => {}
            other => folder.push(other),
        }
    }
    let Some(folder) = folder.join("checkpoints").to_str().map(str::to_owned) else {
        bail!("--data-dir {} is not valid UTF-8; pass --checkpoint-root explicitly", data_dir.display());
    };
    CheckpointRoot::parse(&format!("file://{folder}"))
        .context("cannot derive the checkpoint root from --data-dir; pass --checkpoint-root")
}

/// Collects the tokens given inline and those of `file`, named `flag` in errors.
fn read_tokens(inline: &[String], file: Option<&std::path::Path>, flag: &str) -> anyhow::Result<Vec<String>> {
    let mut tokens: Vec<String> = inline.iter().map(|token| token.trim().to_owned()).filter(|token| !token.is_empty()).collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {flag} {}", path.display()))?;
        let from_file = parse_token_file(&text);
        if from_file.is_empty() {
            bail!("{flag} {} contains no token; add one token per line", path.display());
        }
        tokens.extend(from_file);
    }
    Ok(tokens)
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM; only ctrl-c stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
