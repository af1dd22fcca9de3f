//! The controller's Kubernetes edge: a kube-runtime controller over
//! `FlinkBlueGreenDeployment`s and the `FlinkDeployment`s they own.
//!
//! Each reconciliation reads the resource, its two children and the
//! coordinator's view of the pipeline, asks [`crate::decide`] what to do,
//! carries the actions out (child objects, control API calls), records an
//! Event, and writes the status. Reconciliations are triggered by changes
//! to the resource, to its children, and to its pipeline on the coordinator
//! (a `WatchPipeline` stream per resource), plus a periodic resync.

mod carry_out;
mod clusters;
mod coordinators;
mod error;
mod metrics;
mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use cutover_crds::FlinkBlueGreenDeployment;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tracing::{info, warn};

pub use error::EdgeError;
pub use metrics::{ActionLabel, ControllerMetrics, OutcomeLabel};

use clusters::Clusters;
use coordinators::Coordinators;

/// Finalizer the controller puts on each resource so that deleting it
/// first removes the pipeline's state from the coordinator.
pub const FINALIZER: &str = "cutover.dev/pipeline-state";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Namespace to watch; every namespace when `None`.
    pub namespace: Option<String>,
    /// Name reported on Events (`reportingController`).
    pub reporter: String,
    /// Instance reported on Events (`reportingInstance`), e.g. the pod name.
    pub instance: Option<String>,
    /// Reconcile every resource at least this often.
    pub resync: Duration,
    /// Wait this long after a failed reconciliation.
    pub retry: Duration,
    /// Where to count reconciliations and actions.
    pub metrics: ControllerMetrics,
    /// How to reach `https://` coordinators: CA, client certificate, token.
    pub coordinator_tls: cutover_client::ClientTls,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            reporter: "cutover-controller".into(),
            instance: None,
            resync: Duration::from_secs(300),
            retry: Duration::from_secs(5),
            metrics: ControllerMetrics::default(),
            coordinator_tls: cutover_client::ClientTls::from_env(),
        }
    }
}

/// The `flink.apache.org/v1beta1` FlinkDeployment resource.
pub fn flink_deployment_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment"),
        "flinkdeployments",
    )
}

/// What every reconciliation shares.
struct Context {
    client: kube::Client,
    config: ControllerConfig,
    recorder: Recorder,
    flink: ApiResource,
    coordinators: Coordinators,
    clusters: Clusters,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    config: ControllerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let flink = flink_deployment_resource();
    let (resources, children): (Api<FlinkBlueGreenDeployment>, Api<DynamicObject>) =
        match &config.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced_with(client.clone(), ns, &flink),
            ),
            None => (
                Api::all(client.clone()),
                Api::all_with(client.clone(), &flink),
            ),
        };
    let (triggers, triggered) = tokio::sync::mpsc::unbounded_channel();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: config.reporter.clone(),
            instance: config.instance.clone(),
        },
    );
    let coordinators = Coordinators::new(triggers, config.coordinator_tls.clone());
    let context = Arc::new(Context {
        client,
        config,
        recorder,
        flink: flink.clone(),
        coordinators,
        clusters: Clusters::default(),
    });
    info!(namespace = ?context.config.namespace, "controller started");
    Controller::new(resources, watcher::Config::default())
        .owns_with(
            children,
            flink,
            watcher::Config::default().labels("app.kubernetes.io/managed-by=cutover"),
        )
        .reconcile_on(UnboundedReceiverStream::new(triggered))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                warn!(error = %e, "reconciliation failed");
            }
        })
        .await;
    info!("controller stopped");
}
