//! Prometheus metrics of the coordinator (`cutover_*`), served on the
//! plain-HTTP port by [`crate::web`].

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Label of per-pipeline metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabel {
    /// Pipeline name.
    pub pipeline: String,
}

/// Label of store write outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabel {
    /// Pipeline name.
    pub pipeline: String,
    /// `written`, `conflict` or `error`.
    pub outcome: &'static str,
}

/// Label of control calls: the method and the gRPC status code's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControlLabel {
    /// The control method (`ScheduleTransition`, ...).
    pub method: &'static str,
    /// `OK`, `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, ...
    pub code: &'static str,
}

/// Handles to every coordinator metric; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Live gate sessions.
    pub sessions: Gauge,
    /// Gates on live sessions.
    pub gates: Gauge,
    /// Plan frames written to sessions.
    pub frames_sent: Counter,
    /// Plan updates a slow session skipped because a newer one replaced them.
    pub updates_coalesced: Counter,
    /// Store writes by outcome.
    pub store_writes: Family<WriteLabel, Counter>,
    /// Current epoch per pipeline.
    pub epoch: Family<PipelineLabel, Gauge>,
    /// Sessions ended by a protocol violation.
    pub session_errors: Counter,
    /// Pipelines whose stored state cannot be read.
    pub broken_pipelines: Gauge,
    /// Writes of this coordinator's serving reports (see the fleet).
    pub report_writes: Counter,
    /// Mutating control calls by method and outcome.
    pub control_requests: Family<ControlLabel, Counter>,
}

impl Metrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cutover");
        r.register("sessions", "Live gate sessions", self.sessions.clone());
        r.register("gates", "Gates on live sessions", self.gates.clone());
        r.register(
            "frames_sent",
            "Plan frames written to sessions",
            self.frames_sent.clone(),
        );
        r.register(
            "updates_coalesced",
            "Plan updates skipped by slow sessions in favour of a newer one",
            self.updates_coalesced.clone(),
        );
        r.register(
            "store_writes",
            "Store compare-and-swap writes by outcome",
            self.store_writes.clone(),
        );
        r.register(
            "epoch",
            "Current plan epoch per pipeline",
            self.epoch.clone(),
        );
        r.register(
            "session_errors",
            "Sessions ended by a protocol violation",
            self.session_errors.clone(),
        );
        r.register(
            "pipelines_broken",
            "Pipelines whose stored state cannot be read (answering DATA_LOSS)",
            self.broken_pipelines.clone(),
        );
        r.register(
            "report_writes",
            "Writes of this coordinator's serving reports to the store",
            self.report_writes.clone(),
        );
        r.register(
            "control_requests",
            "Mutating control calls by method and gRPC status code",
            self.control_requests.clone(),
        );
    }

    /// Drops the per-pipeline series of a pipeline that is gone.
    pub fn forget_pipeline(&self, pipeline: &str) {
        self.epoch.remove(&PipelineLabel {
            pipeline: pipeline.to_string(),
        });
        for outcome in ["written", "conflict", "error"] {
            self.store_writes.remove(&WriteLabel {
                pipeline: pipeline.to_string(),
                outcome,
            });
        }
    }
}

/// Serves `registry` at any path of `listener` (plain HTTP/1.1, one request
/// per connection) until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, registry: Arc<Registry>) {
    serve_metrics_and_readiness(listener, registry, None).await
}

/// Like [`serve_metrics`], and `GET /ready` answers 200 while `ready` holds
/// true and 503 otherwise: a readiness probe for a coordinator whose gRPC
/// port speaks only TLS (the kubelet's gRPC probe speaks plaintext). The
/// status page comes with [`crate::web::serve`].
pub async fn serve_metrics_and_readiness(
    listener: TcpListener,
    registry: Arc<Registry>,
    ready: Option<tokio::sync::watch::Receiver<bool>>,
) {
    crate::web::serve(
        listener,
        crate::web::Web {
            registry,
            ready,
            coordinator: None,
        },
    )
    .await
}
