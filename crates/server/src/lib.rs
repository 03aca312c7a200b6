//! The openline server: REST API, webhooks, live events, the dispatcher, metrics and (in demo mode)
//! the simulator, in one process.
//!
//! `start` binds, loads its keys, opens the database (running migrations), seeds demo data when
//! asked, starts the workers and serves until `ServerHandle::shutdown`: then it stops accepting,
//! finishes requests in flight (and with them their commits), waits for every worker (the
//! dispatcher records the sends in flight; media, outbound webhooks and the archive timer finish
//! what they started), and closes the database after its queued writes are done.

pub mod api;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod consent_flow;
pub mod demo;
pub mod error;
pub mod events;
pub mod marketing;
pub mod media_links;
pub mod metrics;
pub mod state;
pub mod twilio_send;
pub mod web;
pub mod webhooks;
pub mod workers;

use crate::config::{Config, Secret};
use crate::state::AppState;
use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use openline_channels::cloud_api::{CloudApiClient, CloudApiConfig};
use openline_channels::twilio::{TwilioClient, TwilioConfig};
use openline_domain::clock::SharedClock;
use openline_sim::{SimConfig, Simulator};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A running server.
pub struct ServerHandle {
    pub addr: SocketAddr,
    /// The base URL it serves at (`http://127.0.0.1:PORT` unless configured).
    pub url: String,
    pub state: AppState,
    /// The in-process simulator (demo mode).
    pub sim: Option<Arc<Simulator>>,
    server: JoinHandle<std::io::Result<()>>,
    dispatcher: JoinHandle<anyhow::Result<()>>,
    outbound_webhooks: JoinHandle<()>,
    media: JoinHandle<()>,
    retention: JoinHandle<()>,
    template_approvals: JoinHandle<()>,
}

impl ServerHandle {
    /// Graceful shutdown: stop accepting, finish in-flight requests and sends, close the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.state
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.state.shutdown.send_replace(true);
        self.server.await.context("server task")?.context("server")?;
        self.dispatcher.await.context("dispatcher task")??;
        self.outbound_webhooks.await.context("outbound webhooks task")?;
        self.media.await.context("media worker task")?;
        // A checkpoint or purge in flight finishes (its transaction commits) before the store closes.
        self.retention.await.context("retention worker task")?;
        self.template_approvals.await.context("template approvals task")?;
        Ok(())
    }

    /// Serves until a shutdown signal (Ctrl-C or SIGTERM), then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests and sends in flight");
        self.shutdown().await
    }
}

/// Resolves on Ctrl-C or SIGTERM (what service managers and `kill` send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
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

/// Starts openline with the demo simulator's defaults (when `config.demo`).
pub async fn start(config: Config, clock: SharedClock) -> anyhow::Result<ServerHandle> {
    start_with(config, clock, |_| {}).await
}

/// Starts openline; `tune_sim` adjusts the in-process simulator's settings (tests shorten delays).
pub async fn start_with(
    mut config: Config,
    clock: SharedClock,
    tune_sim: impl FnOnce(&mut SimConfig),
) -> anyhow::Result<ServerHandle> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();

    // Demo mode's clock can be moved forward (`POST /sim/clock/advance`) to see the 24-hour window
    // close; openline and the simulator read the same one. Production never wraps its clock.
    let demo_clock = config
        .demo
        .then(|| Arc::new(openline_domain::clock::OffsetClock::new(clock.clone())));
    let clock: SharedClock = match &demo_clock {
        Some(c) => c.clone(),
        None => clock,
    };
    if config.demo && config.public_url.is_none() {
        // The demo's simulated Twilio, in this process, reaches the server's own address: public
        // media links (`media_links`) point there.
        config.public_url = Some(url.clone());
    }
    let sim = if config.demo {
        let mut sc = SimConfig {
            webhook_url: format!("{url}/webhooks/whatsapp"),
            twilio_webhook_url: format!("{url}/webhooks/twilio"),
            public_base_url: format!("{url}/sim"),
            personas: openline_sim::demo_personas(),
            ..SimConfig::default()
        };
        tune_sim(&mut sc);
        // Demo mode talks to the simulator inside this process.
        config.whatsapp.graph_base_url = format!("{url}/sim/graph");
        config.whatsapp.access_token = Secret::new(sc.access_token.clone());
        config.whatsapp.app_secret = Secret::new(sc.app_secret.clone());
        config.twilio.base_url = format!("{url}/sim/twilio");
        config.twilio.account_sid = sc.twilio_account_sid.clone();
        config.twilio.auth_token = Secret::new(sc.twilio_auth_token.clone());
        if let Some(key) = &sc.twilio_shared_key {
            // The simulator signs Twilio webhooks with a shared key (HMAC-SHA256), as a Twilio
            // Webhook Setting would: openline verifies with the same secret.
            config.twilio.webhook_shared_key = Secret::new(key.secret.clone());
        }
        if config.whatsapp.verify_token.is_empty() {
            config.whatsapp.verify_token = Secret::new("openline-demo-verify-token");
        }
        Some(Simulator::new(sc, clock.clone()))
    } else {
        None
    };

    // Keys are read once here: a missing or damaged key stops start-up instead of every request.
    let archive_signing_key = config.archive.signing_key().context("the archive signing key")?;
    let webhook_secrets_key = config
        .webhook_secrets_key()
        .context("the outbound webhook secrets key")?;
    let db = config.database()?;
    let store = openline_store::Store::open(&db).map_err(|e| anyhow::anyhow!("cannot open the database {db}: {e}"))?;
    if let Some(sim) = &sim {
        if demo::seed(&store, sim.config(), clock.now()).await? {
            tracing::info!("seeded the demo organization");
        }
    }
    let cloud = CloudApiClient::new(CloudApiConfig {
        base_url: config.whatsapp.graph_base_url.clone(),
        api_version: config.whatsapp.api_version.clone(),
        access_token: config.whatsapp.access_token.expose().to_owned(),
        timeout: Duration::from_millis(config.whatsapp.timeout_ms),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let twilio = if config.twilio.account_sid.is_empty() {
        None
    } else {
        Some(
            TwilioClient::new(TwilioConfig {
                base_url: config.twilio.base_url.clone(),
                account_sid: config.twilio.account_sid.clone(),
                auth_token: config.twilio.auth_token.expose().to_owned(),
                timeout: Duration::from_millis(config.twilio.timeout_ms),
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        )
    };
    let twilio_webhook_url = config
        .twilio
        .webhook_url
        .clone()
        .unwrap_or_else(|| format!("{url}/webhooks/twilio"));
    // Subscriptions written before secrets were sealed (migration 0014) are sealed now.
    let key = webhook_secrets_key.clone();
    let sealed = store
        .write(move |c| openline_store::webhooks_out::sealed::seal_plaintext_secrets(c, &key))
        .await
        .map_err(|e| anyhow::anyhow!("sealing stored webhook secrets: {e}"))?;
    if sealed > 0 {
        tracing::info!(
            subscriptions = sealed,
            "sealed outbound webhook secrets stored in plain text"
        );
    }
    let keys = state::Keys {
        archive_signing_key,
        webhook_secrets_key,
    };
    let state = AppState::new(store, clock, config, cloud, twilio, twilio_webhook_url, keys);

    let mut app = router(state.clone());
    if let Some(sim) = &sim {
        let mut sim_routes = sim.router();
        if let Some(c) = &demo_clock {
            sim_routes = sim_routes.merge(demo::clock_routes(c.clone(), state.dispatcher_wake.clone()));
        }
        app = app.nest("/sim", sim_routes);
    }
    let dispatcher = spawn_dispatcher(state.clone())?;
    // Checkpoints and retention purges on a timer; stops with the shutdown signal.
    let retention = tokio::spawn(workers::retention::run(state.clone(), state.shutdown.subscribe()));
    let outbound_webhooks = tokio::spawn(workers::outbound_webhooks::run(
        state.clone(),
        state.shutdown.subscribe(),
    ));
    // Fetches the files contacts send; stops with the shutdown signal after recording downloads in flight.
    let media = tokio::spawn(workers::media::run(state.clone(), state.shutdown.subscribe()));
    // Asks Twilio again about Content templates awaiting WhatsApp's review (Twilio sends no webhook).
    let template_approvals = tokio::spawn(workers::template_approvals::run(
        state.clone(),
        state.shutdown.subscribe(),
    ));
    let mut server_rx = state.shutdown.subscribe();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = server_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%addr, database = %db, demo = sim.is_some(), "openline is listening");
    Ok(ServerHandle {
        addr,
        url,
        state,
        sim,
        server,
        dispatcher,
        outbound_webhooks,
        media,
        retention,
        template_approvals,
    })
}

/// Runs the dispatcher on a thread of its own with a single-threaded runtime. Its work is many
/// small steps per send (a paced wake-up, the HTTP request, the answer, the hand-over to the
/// accept recorder); on the shared multi-threaded runtime each step could wake the other worker
/// thread to steal it, which at 1,000 sends/s was several context switches per send (the server's
/// CPU at 1,000 sends/s fell by a sixth). The handle finishes when the dispatcher has stopped, with
/// an error if its thread ended otherwise (a panic).
fn spawn_dispatcher(state: AppState) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the dispatcher's runtime")?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = state.shutdown.subscribe();
    std::thread::Builder::new()
        .name("dispatcher".into())
        .spawn(move || {
            runtime.block_on(workers::dispatcher::run(state, shutdown));
            let _ = done_tx.send(());
        })
        .context("starting the dispatcher's thread")?;
    Ok(tokio::spawn(async move {
        done_rx
            .await
            .map_err(|_| anyhow::anyhow!("the dispatcher's thread ended before the dispatcher stopped"))
    }))
}

/// Every route of the server (without the simulator), with its middleware.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let bench = if state.config.bench_ceiling {
        Router::new().route("/bench/ceiling", axum::routing::post(bench_ceiling))
    } else {
        Router::new()
    };
    Router::new()
        .merge(bench)
        .merge(api::router())
        .merge(web::router())
        .route(
            "/webhooks/whatsapp",
            get(webhooks::whatsapp::verify_subscription)
                .post(webhooks::whatsapp::receive_webhook)
                .layer(DefaultBodyLimit::max(4 * 1024 * 1024)),
        )
        .route(
            "/webhooks/twilio",
            axum::routing::post(webhooks::twilio::receive_twilio_webhook).layer(DefaultBodyLimit::max(1024 * 1024)),
        )
        // Signed, expiring links Twilio fetches outgoing files from (no session).
        .route("/media/public/{media_id}", get(media_links::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(error::not_found_fallback)
        .with_state(state)
        .layer(axum::middleware::from_fn(error::log_errors))
        .layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
            let metrics = metrics.clone();
            async move {
                let res = next.run(req).await;
                metrics
                    .http_requests
                    .get_or_create(&metrics::StatusLabel {
                        status: res.status().as_u16().to_string(),
                    })
                    .inc();
                res
            }
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// `GET /readyz`: 200 when the database answers and the server is not shutting down.
async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    if st.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match st.store.read(|c| c.batch("select 1")).await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
}

/// `POST /bench/ceiling` (only with `bench_ceiling`): what a webhook costs without storage: the same
/// signature check over the raw bytes and JSON parse as `/webhooks/whatsapp`, then 200.
async fn bench_ceiling(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if openline_channels::verify_meta_signature(st.config.whatsapp.app_secret.expose().as_bytes(), &body, header)
        .is_err()
    {
        return StatusCode::FORBIDDEN;
    }
    match openline_channels::cloud_api::parse_webhook(&body) {
        Ok(events) if !events.is_empty() => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}
