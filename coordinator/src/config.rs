//! Settings of a coordinator (the binary fills them from flags and
//! environment variables).

use std::time::Duration;

use cutover_core::HorizonPolicy;
use cutover_core::fleet::CoordinatorId;
use rand::Rng;

/// Coordinator settings.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Horizon policy of pipelines this coordinator creates.
    pub horizon: HorizonPolicy,
    /// Largest message accepted from a client, in bytes.
    pub max_message_bytes: usize,
    /// Most gates one session may carry.
    pub max_gates_per_session: usize,
    /// Compare-and-swap attempts before a write gives up.
    pub cas_attempts: u32,
    /// Back-off between a failed automatic write and the next try.
    pub retry_backoff: Duration,
    /// Serving one pipeline with other coordinators.
    pub fleet: FleetConfig,
    /// How long a new gate session may take to send its Hello.
    pub first_message_timeout: Duration,
    /// How long a connection may take to finish its TLS handshake.
    pub handshake_timeout: Duration,
    /// Who may do what; every caller everything when `None`.
    pub authoriser: Option<std::sync::Arc<crate::auth::Authoriser>>,
    /// Bearer tokens as identities; client certificates only when `None`.
    pub tokens: Option<std::sync::Arc<crate::auth::token::TokenAuth>>,
    /// Gate sessions and mutating control calls per caller.
    pub caller_limits: crate::admission::CallerLimits,
    /// Streams one HTTP/2 connection may have open at once.
    pub max_concurrent_streams: u32,
    /// How often an idle connection is pinged (HTTP/2 keep-alive).
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
}

/// How this coordinator works with the others serving the same pipelines
/// (see `cutover_core::fleet`).
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// This coordinator's id, unique in the fleet.
    pub id: CoordinatorId,
    /// How often it renews its liveness record.
    pub renew_interval: Duration,
    /// How long another coordinator's reports count after its renewals were
    /// last seen changing (reader's clock). Keep it several renewals long,
    /// and shorter than the time gate clients take to notice a coordinator
    /// that stopped answering.
    pub ttl: Duration,
    /// How often it checks whether its reports changed in what the others
    /// decide on.
    pub report_check: Duration,
    /// Least time between two writes of one pipeline's report.
    pub min_report_interval: Duration,
}

impl FleetConfig {
    /// Settings with id `id` and the default intervals.
    pub fn with_id(id: CoordinatorId) -> Self {
        FleetConfig {
            id,
            renew_interval: Duration::from_secs(2),
            ttl: Duration::from_secs(10),
            report_check: Duration::from_millis(100),
            min_report_interval: Duration::from_millis(250),
        }
    }
}

/// A fresh id: the host name (when it is a valid id) and a random suffix.
pub fn generated_id() -> CoordinatorId {
    let suffix: u32 = rand::rng().random();
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.len() <= 100);
    let id = match host {
        Some(host) => format!("{host}-{suffix:08x}"),
        None => format!("coordinator-{suffix:08x}"),
    };
    CoordinatorId::new(id).unwrap_or_else(|_| {
        CoordinatorId::new(format!("coordinator-{suffix:08x}")).expect("a valid generated id")
    })
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig::with_id(generated_id())
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            horizon: HorizonPolicy::default(),
            max_message_bytes: 4 * 1024 * 1024,
            max_gates_per_session: 65_536,
            cas_attempts: 16,
            retry_backoff: Duration::from_millis(200),
            fleet: FleetConfig::default(),
            first_message_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            authoriser: None,
            tokens: None,
            caller_limits: crate::admission::CallerLimits::default(),
            max_concurrent_streams: 256,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}
