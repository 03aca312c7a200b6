//! `openline`: the one binary. `serve` runs the server (with `--demo`, the simulator and demo data
//! too), `migrate` applies database migrations, `sim` runs the simulator on its own, and `admin`
//! creates organizations, users, API tokens and senders from the command line.
//!
//! Output meant for people and scripts (URLs, tokens, generated passwords) goes to stdout; logs go
//! to stderr, so `TOKEN=$(openline admin create-token … | tail -n 1)` works. A failure prints one
//! `error: …` line (with its causes) to stderr and exits with status 1: never a panic or backtrace.
//!
//! Settings come from flags, then `OPENLINE_*` environment variables, then the TOML file named by
//! `--config`/`OPENLINE_CONFIG`, then defaults. Secrets are read only from the file or the
//! environment, never from flags (which other users of the machine can see in `ps`).

mod admin;
mod archive;
mod bench;
mod webhooks;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use openline_server::config::Config;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc instead of the system allocator: under load the server allocates and frees small
/// buffers on every request from several threads, and glibc's malloc (its arena locks, chunk
/// unlinking and consolidation) was about a tenth of the server's CPU in `perf` during
/// `openline bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "openline",
    version,
    about = "Compliant WhatsApp Business messaging for regulated enterprises"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (REST API, webhooks, live events, dispatcher).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(CommonArgs),
    /// Run the WhatsApp Cloud API simulator on its own, for a separately started openline.
    Sim(SimArgs),
    /// The tamper-evident archive: verify its hash chains, export it.
    #[command(subcommand)]
    Archive(archive::ArchiveCommand),
    /// Administration: organizations, users, API tokens and senders.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Benchmark a freshly started server over loopback and print a table (see the README).
    Bench(bench::BenchArgs),
}

/// Where the settings and the database are.
#[derive(Args, Clone, Default)]
pub struct CommonArgs {
    /// TOML config file [env: OPENLINE_CONFIG]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory [env: OPENLINE_DATA_DIR] [default: ./data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// postgres://… or sqlite://PATH [env: OPENLINE_DATABASE_URL] [default: DATA_DIR/openline.db]
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on [env: OPENLINE_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<String>,
    /// Seed demo data and run the simulator inside the server under /sim [env: OPENLINE_DEMO]
    #[arg(long)]
    demo: bool,
    /// The URL this server is reachable at, if not http://LISTEN [env: OPENLINE_PUBLIC_URL]
    #[arg(long)]
    public_url: Option<String>,
}

#[derive(Args)]
struct SimArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Where to send webhooks (openline's /webhooks/whatsapp)
    #[arg(long, default_value = "http://127.0.0.1:8080/webhooks/whatsapp")]
    webhook_url: String,
    /// Seconds before `delivered`, and again before `read`
    #[arg(long, default_value_t = 1.0)]
    status_delay_secs: f64,
    /// Milliseconds the Graph API takes to answer an accepted send (the message is already on the
    /// phone meanwhile)
    #[arg(long, default_value_t = 0)]
    send_latency_ms: u64,
}

/// Loads settings: defaults < file < environment < flags.
pub fn load_config(common: &CommonArgs) -> anyhow::Result<Config> {
    let file = common
        .config
        .clone()
        .or_else(|| std::env::var_os("OPENLINE_CONFIG").map(PathBuf::from));
    let mut config = match file {
        Some(path) => Config::from_file(&path)?,
        None => Config::default(),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(d) = &common.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(u) = &common.database_url {
        config.database_url = Some(u.clone());
    }
    Ok(config)
}

/// The database the settings name, opened (for the commands that work on it directly).
pub(crate) fn open_store(config: &Config) -> anyhow::Result<openline_store::Store> {
    let db = config.database()?;
    openline_store::Store::open(&db).map_err(|e| anyhow::anyhow!("cannot open {db}: {e}"))
}

/// The command line may act on any organization: the scope is every organization there is.
pub(crate) fn every_organization(
    c: &mut dyn openline_store::Conn,
) -> Result<openline_store::orgs::Scope, openline_store::StoreError> {
    let org_ids = c
        .query("select id from organizations order by id", &[])?
        .iter()
        .map(|r| r.string(0))
        .collect::<Result<_, _>>()?;
    Ok(openline_store::orgs::Scope { org_ids })
}

/// Logs to stderr at `default` unless `OPENLINE_LOG` says otherwise.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The benchmark runs simulators in its own process: their per-message lines would bury its table.
    init_logging(match cli.command {
        Command::Bench(_) => "warn",
        _ => "info,tower_http=warn",
    });
    let outcome = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(common) => migrate(&common),
        Command::Sim(args) => sim(args).await,
        Command::Admin(cmd) => admin::run(cmd).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Archive(cmd) => match archive::run(cmd).await {
            // A broken chain is a finding, not a crash: report it and exit 1.
            Ok(false) => return std::process::ExitCode::FAILURE,
            Ok(true) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the chain of causes on one line and, unlike returning the error from
            // `main`, never a backtrace (even with RUST_BACKTRACE set).
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(&args.common)?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if args.demo {
        config.demo = true;
    }
    if config.demo {
        // Demo webhook receivers (a local CRM or archive stand-in) run on this machine.
        config.webhooks.allow_private = true;
    }
    if let Some(u) = args.public_url {
        config.public_url = Some(u);
    }
    let demo = config.demo;
    let clock: openline_domain::clock::SharedClock = Arc::new(openline_domain::clock::SystemClock);
    let handle = openline_server::start(config, clock).await?;
    println!("openline is running at {}", handle.url);
    if demo {
        println!();
        println!(
            "Demo mode: the WhatsApp simulator runs at {}/sim and demo data is loaded.",
            handle.url
        );
        println!(
            "Sign in (POST {}/api/v1/auth/login) with any of these, password \"{}\":",
            handle.url,
            openline_server::demo::DEMO_PASSWORD
        );
        for (email, name, role, _) in openline_server::demo::DEMO_USERS {
            println!("  {email:<32} {name} ({role})");
        }
        println!(
            "Simulated WhatsApp users (act as them through {}/sim/phones):",
            handle.url
        );
        if let Some(sim) = &handle.sim {
            for p in &sim.config().personas {
                println!("  {}  {}  ({:?})", p.phone, p.name, p.behaviour);
            }
        }
        println!("API description: {}/api/openapi.json   Stop with Ctrl-C.", handle.url);
    }
    handle.run_until_signal().await
}

fn migrate(common: &CommonArgs) -> anyhow::Result<()> {
    let config = load_config(common)?;
    let db = config.database()?;
    // Opening the store applies pending migrations.
    openline_store::Store::open(&db)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("migrating {db}"))?;
    println!("migrations applied to {db}");
    Ok(())
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    // Bind first: with port 0 the address the simulator names in media URLs and prints is the one
    // the operating system picked, not the one asked for.
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut config = openline_sim::SimConfig {
        webhook_url: args.webhook_url,
        public_base_url: format!("http://{addr}"),
        personas: openline_sim::demo_personas(),
        ..openline_sim::SimConfig::default()
    };
    if let Ok(s) = std::env::var("OPENLINE_SIM_APP_SECRET") {
        config.app_secret = s;
    }
    if let Ok(t) = std::env::var("OPENLINE_SIM_ACCESS_TOKEN") {
        config.access_token = t;
    }
    if let Ok(t) = std::env::var("OPENLINE_SIM_TWILIO_AUTH_TOKEN") {
        config.twilio_auth_token = t;
    }
    // Inbound SMS go to openline's Twilio endpoint beside its WhatsApp one.
    config.twilio_webhook_url = config.webhook_url.replace("/webhooks/whatsapp", "/webhooks/twilio");
    config.send_latency_ms = args.send_latency_ms;
    let delay = (args.status_delay_secs.max(0.0) * 1000.0) as u64;
    config.delivered_after_ms = delay;
    config.read_after_ms = delay;
    let clock: openline_domain::clock::SharedClock = Arc::new(openline_domain::clock::SystemClock);
    let sim = openline_sim::Simulator::new(config, clock);
    println!("simulator listening on http://{addr} (Graph API at /graph, phones at /phones)");
    println!("point openline at it: OPENLINE_WHATSAPP_GRAPH_BASE_URL=http://{addr}/graph");
    println!(
        "  and for SMS: OPENLINE_TWILIO_BASE_URL=http://{addr}/twilio OPENLINE_TWILIO_ACCOUNT_SID={} (auth token from OPENLINE_SIM_TWILIO_AUTH_TOKEN, default sim-twilio-auth-token)",
        sim.config().twilio_account_sid
    );
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(openline_server::shutdown_signal())
        .await?;
    Ok(())
}
