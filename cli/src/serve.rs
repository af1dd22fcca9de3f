//! `cutover serve`: a coordinator on a port, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cutover_coordinator::admission::CallerLimits;
use cutover_coordinator::auth::Authoriser;
use cutover_coordinator::auth::token::{TokenAuth, load_issuers};
use cutover_coordinator::config::{FleetConfig, generated_id};
use cutover_coordinator::tls::{ServerTls, TlsFiles};
use cutover_coordinator::{Coordinator, CoordinatorConfig, Metrics, serve, serve_tls};
use cutover_core::fleet::CoordinatorId;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpSocket};
use tracing::{info, warn};

use cutover_cli::flags;
use cutover_cli::store_spec::{StoreOptions, StoreSpec};

/// Flags of `cutover serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address of the gRPC port (gate service, control service, health,
    /// reflection).
    #[arg(long, env = "CUTOVER_LISTEN", default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (any path) and of
    /// `GET /ready` (200 once the store answered, else 503); `off` disables
    /// both.
    #[arg(long, env = "CUTOVER_METRICS_LISTEN", default_value = "127.0.0.1:9700")]
    metrics_listen: String,
    /// Serve the status page on the metrics port: `/` lists the pipelines,
    /// `/pipelines/NAME` draws one live (server-sent events). Read-only,
    /// and without authentication, like the metrics: `false` leaves it out.
    #[arg(long, env = "CUTOVER_STATUS_PAGE", default_value_t = true, action = clap::ArgAction::Set)]
    status_page: bool,
    /// Where pipeline plans are stored: `file:PATH` (one JSON document per
    /// pipeline, the embedded default), `configmap[:NAMESPACE]` (one
    /// ConfigMap per pipeline; the source of truth inside a cluster),
    /// `etcd:URL[,URL...]` (one key per pipeline; for coordinators in
    /// several clusters) or `memory` (lost on exit).
    #[arg(long, env = "CUTOVER_STORE", default_value = "file:cutover-state")]
    store: StoreSpec,
    #[command(flatten)]
    store_options: StoreOptions,
    /// How far the horizon runs ahead of the gates' watermarks, in event
    /// time (e.g. `10s`, `500ms`; 1 ms to 2^40 ms). Also the lead time of a
    /// cutover at EARLIEST. Applies to pipelines this coordinator creates.
    #[arg(long, env = "CUTOVER_HORIZON_WINDOW", default_value = "10s", value_parser = flags::horizon_window, allow_hyphen_values = true)]
    horizon_window: Duration,
    /// Largest message accepted from a client, in bytes (64 KiB to 256 MiB).
    #[arg(long, env = "CUTOVER_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(flags::MESSAGE_BYTES))]
    max_message_bytes: u64,
    /// This coordinator's id among the coordinators sharing the store (1 to
    /// 128 characters of letters, digits, `.`, `_`, `-`); the host name and
    /// a random suffix when absent. Use a fresh one per process (a Pod
    /// name is fine: a restarted Pod is a new process with the same name
    /// only after the old one stopped).
    #[arg(long, env = "CUTOVER_COORDINATOR_ID", value_parser = flags::coordinator_id)]
    coordinator_id: Option<CoordinatorId>,
    /// How often this coordinator renews its liveness record in the store.
    #[arg(long, env = "CUTOVER_FLEET_RENEW", default_value = "2s", value_parser = flags::duration)]
    fleet_renew: Duration,
    /// How long another coordinator's reports count after its renewals
    /// were last seen (this coordinator's clock). Several renewals long,
    /// and shorter than gate clients take to leave a coordinator that
    /// stopped answering.
    #[arg(long, env = "CUTOVER_FLEET_TTL", default_value = "10s", value_parser = flags::duration)]
    fleet_ttl: Duration,
    /// PEM certificate chain for TLS on the gRPC port (with --tls-key);
    /// re-read when it changes on disk.
    #[arg(long, env = "CUTOVER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "CUTOVER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates client certificates must chain to: mutual TLS,
    /// every client presents a certificate. Re-read when it changes.
    #[arg(long, env = "CUTOVER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Policy file mapping caller identities (client certificates) to
    /// roles over pipelines; re-read when it changes. Without it every
    /// caller may do everything.
    #[arg(long, env = "CUTOVER_POLICY", requires = "tls_cert")]
    policy: Option<PathBuf>,
    /// Accept Kubernetes ServiceAccount tokens (bearer, audience
    /// --token-audience) as identities, checked by a TokenReview against
    /// the API server this process runs under (in cluster, or the
    /// kubeconfig's). Needs TLS (--tls-cert).
    #[arg(long, env = "CUTOVER_TOKEN_REVIEW", requires = "tls_cert")]
    token_review: bool,
    /// Accept ServiceAccount tokens of other clusters, checked offline
    /// against the signing keys (JWKS) of the issuers this YAML file names
    /// (`issuers: [{issuer: URL, jwks_file: PATH}]`). Needs TLS.
    #[arg(long, env = "CUTOVER_TOKEN_ISSUERS", requires = "tls_cert")]
    token_issuers: Option<PathBuf>,
    /// The audience a token must be issued for.
    #[arg(long, env = "CUTOVER_TOKEN_AUDIENCE", default_value = "cutover")]
    token_audience: String,
    /// How long a new gate session may take to send its Hello before it is
    /// closed (DEADLINE_EXCEEDED).
    #[arg(long, env = "CUTOVER_FIRST_MESSAGE_TIMEOUT", default_value = "10s", value_parser = flags::duration)]
    first_message_timeout: Duration,
    /// How long a connection may take to finish its TLS handshake before it
    /// is closed.
    #[arg(long, env = "CUTOVER_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = flags::positive_duration)]
    handshake_timeout: Duration,
    /// Most gates one session may carry.
    #[arg(long, env = "CUTOVER_MAX_GATES_PER_SESSION", default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    max_gates_per_session: u64,
    /// Most gate sessions one caller (a certificate's identity, else an IP
    /// address) may hold at once; 0 for no limit.
    #[arg(long, env = "CUTOVER_MAX_SESSIONS_PER_CALLER", default_value_t = 1024)]
    max_sessions_per_caller: usize,
    /// Mutating control calls (schedule, abort, promote, complete, create,
    /// delete, forget) one caller may make per second on average; 0 for no
    /// limit. Over it: RESOURCE_EXHAUSTED with the time to wait.
    #[arg(long, env = "CUTOVER_CONTROL_RATE", default_value_t = 100.0, value_parser = flags::rate)]
    control_rate: f64,
    /// Mutating control calls one caller may make at once after a quiet
    /// period.
    #[arg(long, env = "CUTOVER_CONTROL_BURST", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    control_burst: u32,
    /// Streams one HTTP/2 connection may have open at once (gate sessions,
    /// watches and calls).
    #[arg(long, env = "CUTOVER_MAX_CONCURRENT_STREAMS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_streams: u32,
    /// How often an idle connection is pinged (HTTP/2 keep-alive).
    #[arg(long, env = "CUTOVER_KEEPALIVE_INTERVAL", default_value = "10s", value_parser = flags::positive_duration)]
    keepalive_interval: Duration,
    /// How long a keep-alive ping may go unanswered before the connection
    /// is closed.
    #[arg(long, env = "CUTOVER_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = flags::positive_duration)]
    keepalive_timeout: Duration,
    /// Accept plaintext gRPC on an address other than loopback (anyone who
    /// reaches the port can then call it; logged as a warning).
    #[arg(long, env = "CUTOVER_INSECURE_PLAINTEXT")]
    insecure_plaintext: bool,
}

impl ServeArgs {
    /// Serves until a signal arrives.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let tls = self.tls()?;
        let authoriser = match &self.policy {
            Some(path) => {
                let authoriser =
                    Arc::new(Authoriser::load(path.clone()).context("loading the policy")?);
                // Re-read for as long as the process serves (the task
                // outlives its handle).
                let _reloading = authoriser.watch();
                Some(authoriser)
            }
            None => None,
        };
        let tokens = self.tokens().await?;
        anyhow::ensure!(
            authoriser.is_none() || self.tls_client_ca.is_some() || tokens.is_some(),
            "--policy needs identities: client certificates (--tls-client-ca) or tokens \
             (--token-review, --token-issuers)"
        );
        anyhow::ensure!(
            tokens.is_none() || authoriser.is_some(),
            "tokens are identities for a policy: give --policy with --token-review or \
             --token-issuers"
        );
        let store = self.store.open(&self.store_options).await?;
        let config = CoordinatorConfig {
            horizon: flags::horizon_policy(self.horizon_window),
            max_message_bytes: usize::try_from(self.max_message_bytes)
                .context("--max-message-bytes does not fit this machine")?,
            fleet: FleetConfig {
                renew_interval: self.fleet_renew,
                ttl: self.fleet_ttl,
                ..FleetConfig::with_id(self.coordinator_id.unwrap_or_else(generated_id))
            },
            authoriser,
            tokens,
            first_message_timeout: self.first_message_timeout,
            handshake_timeout: self.handshake_timeout,
            max_gates_per_session: usize::try_from(self.max_gates_per_session)
                .context("--max-gates-per-session does not fit this machine")?,
            caller_limits: CallerLimits {
                max_sessions_per_caller: self.max_sessions_per_caller,
                control_calls_per_second: self.control_rate,
                control_burst: self.control_burst,
            },
            max_concurrent_streams: self.max_concurrent_streams,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            ..CoordinatorConfig::default()
        };
        anyhow::ensure!(
            config.fleet.ttl >= config.fleet.renew_interval * 2,
            "--fleet-ttl ({:?}) must be at least twice --fleet-renew ({:?})",
            config.fleet.ttl,
            config.fleet.renew_interval
        );
        anyhow::ensure!(
            !config.fleet.renew_interval.is_zero(),
            "--fleet-renew must be positive"
        );
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let coordinator = Coordinator::new(store, config, metrics);
        registry.register_collector(Box::new(
            cutover_coordinator::status_metrics::StatusMetrics::new(coordinator.clone()),
        ));
        // Serve at once (NOT_SERVING on health) and load the stored
        // pipelines once the store answers.
        coordinator.set_ready(false);
        tokio::spawn(load_when_the_store_answers(coordinator.clone()));
        if self.metrics_listen != "off" {
            let listener = TcpListener::bind(&self.metrics_listen)
                .await
                .with_context(|| format!("binding metrics address {}", self.metrics_listen))?;
            info!(address = %self.metrics_listen, status_page = self.status_page, "metrics endpoint");
            tokio::spawn(cutover_coordinator::web::serve(
                listener,
                cutover_coordinator::web::Web {
                    registry: Arc::new(registry),
                    ready: Some(coordinator.ready()),
                    coordinator: self.status_page.then(|| coordinator.clone()),
                },
            ));
        }
        let listener =
            gate_listener(self.listen).with_context(|| format!("binding {}", self.listen))?;
        match tls {
            Some(tls) => serve_tls(coordinator, listener, tls, shutdown_signal()).await?,
            None => serve(coordinator, listener, shutdown_signal()).await?,
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Token verification, if asked for.
    async fn tokens(&self) -> anyhow::Result<Option<Arc<TokenAuth>>> {
        if !self.token_review && self.token_issuers.is_none() {
            return Ok(None);
        }
        let issuers = match &self.token_issuers {
            Some(path) => load_issuers(path).context("loading --token-issuers")?,
            None => Vec::new(),
        };
        let review = if self.token_review {
            Some(
                kube::Client::try_default()
                    .await
                    .context("--token-review needs the cluster's API server")?,
            )
        } else {
            None
        };
        info!(
            audience = %self.token_audience,
            issuers = issuers.len(),
            review = review.is_some(),
            "ServiceAccount tokens accepted as identities"
        );
        Ok(Some(Arc::new(TokenAuth::new(
            self.token_audience.clone(),
            issuers,
            review,
        ))))
    }

    /// The TLS configuration, or none — refused in plaintext on an address
    /// other than loopback unless --insecure-plaintext says so.
    fn tls(&self) -> anyhow::Result<Option<Arc<ServerTls>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            anyhow::ensure!(
                self.listen.ip().is_loopback() || self.insecure_plaintext,
                "refusing plaintext gRPC on {}, which is not a loopback address: give \
                 --tls-cert and --tls-key (and --tls-client-ca for mutual TLS), or \
                 --insecure-plaintext to accept that anyone reaching the port can call it",
                self.listen
            );
            if !self.listen.ip().is_loopback() {
                warn!(listen = %self.listen, "serving plaintext gRPC on a non-loopback address (--insecure-plaintext): anyone who reaches the port can call it");
            }
            return Ok(None);
        };
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: self.tls_client_ca.clone(),
        };
        // Accepting tokens, a caller may present a token instead of a
        // client certificate.
        let tokens = self.token_review || self.token_issuers.is_some();
        let tls = if tokens {
            ServerTls::load_accepting_tokens(files)
        } else {
            ServerTls::load(files)
        }
        .context("loading the TLS files")?;
        info!(mutual = tls.mutual(), "TLS on the gRPC port");
        Ok(Some(Arc::new(tls)))
    }
}

/// Loads every stored pipeline, retrying with back-off while the store
/// cannot be reached, then reports the coordinator ready.
async fn load_when_the_store_answers(coordinator: Coordinator) {
    let mut wait = Duration::from_millis(200);
    let mut failures = cutover_coordinator::log_limit::RepeatLimiter::new(Duration::from_secs(30));
    loop {
        match coordinator.load_all().await {
            Ok(loaded) => {
                let broken = coordinator.broken().all().len();
                info!(
                    pipelines = loaded,
                    broken, "loaded stored pipelines; serving"
                );
                coordinator.set_ready(true);
                return;
            }
            Err(e) => {
                let message = format!("{e:#}");
                if let cutover_coordinator::log_limit::Verdict::Log { suppressed } =
                    failures.occurred(&message, std::time::Instant::now())
                {
                    tracing::warn!(error = %message, suppressed, "cannot load the stored pipelines yet (NOT_SERVING); retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = coordinator.stopped() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

/// Connections the kernel queues before they are accepted. After a restart
/// every gate client reconnects at once; a short queue drops SYNs, and a
/// dropped SYN is retried only after a second. (The kernel caps it at
/// `net.core.somaxconn`.)
const ACCEPT_BACKLOG: u32 = 16_384;

/// The gRPC listener: address reuse (a restarted coordinator takes its port
/// back at once) and a long accept queue.
fn gate_listener(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
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
    let _ = ctrl_c.await;
}
