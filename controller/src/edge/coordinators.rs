//! The coordinators the resources name: one lazily connected client per
//! address, and one `WatchPipeline` stream per resource that triggers a
//! reconciliation of that resource when something its decisions read
//! changes (not on every ack or progress report).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cutover_client::{ClientTls, ControlClient, ControlError};
use cutover_core::{Colour, Epoch, PipelineName, PipelineStatus};
use cutover_crds::FlinkBlueGreenDeployment;
use futures::StreamExt;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tracing::debug;

use super::error::EdgeError;
use crate::observed::PipelineView;

type Resource = ObjectRef<FlinkBlueGreenDeployment>;

/// First and last pause before re-opening a broken pipeline watch.
const WATCH_BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// A pipeline watch, stopped when dropped.
struct PipelineWatch {
    endpoint: String,
    pipeline: PipelineName,
    task: JoinHandle<()>,
}

impl Drop for PipelineWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Channels to coordinators and the pipeline watches.
pub(super) struct Coordinators {
    tls: ClientTls,
    clients: Mutex<HashMap<String, ControlClient>>,
    watches: Mutex<HashMap<Resource, PipelineWatch>>,
    triggers: UnboundedSender<Resource>,
}

impl Coordinators {
    pub(super) fn new(triggers: UnboundedSender<Resource>, tls: ClientTls) -> Self {
        Coordinators {
            tls,
            clients: Mutex::new(HashMap::new()),
            watches: Mutex::new(HashMap::new()),
            triggers,
        }
    }

    /// A control client for `endpoint` (connected on first use).
    pub(super) fn client(&self, endpoint: &str) -> Result<ControlClient, EdgeError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(endpoint) {
            return Ok(client.clone());
        }
        let client = ControlClient::lazy_with(
            endpoint,
            &self.tls,
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
        .map_err(|e| EdgeError::CoordinatorAddress {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })?;
        clients.insert(endpoint.to_string(), client.clone());
        Ok(client)
    }

    /// The pipeline's status; `None` while the coordinator does not know it
    /// (no gate has connected yet).
    pub(super) async fn pipeline(
        &self,
        endpoint: &str,
        pipeline: &PipelineName,
    ) -> Result<Option<PipelineStatus>, EdgeError> {
        match self.client(endpoint)?.get(pipeline).await {
            Ok(status) => Ok(Some(status)),
            Err(e) if e.code() == Some(tonic::Code::NotFound) => Ok(None),
            Err(e) => Err(refused(endpoint, "GetPipeline", e)),
        }
    }

    /// Creates the pipeline (owned by `owner`, horizon window `window` in
    /// key units) unless it exists; returns its status.
    pub(super) async fn create_pipeline(
        &self,
        endpoint: &str,
        pipeline: &PipelineName,
        owner: Colour,
        window: u64,
    ) -> Result<PipelineStatus, EdgeError> {
        self.client(endpoint)?
            .create(pipeline, owner, Some(window))
            .await
            .map_err(|e| refused(endpoint, "CreatePipeline", e))
    }

    /// Reconciles `resource` whenever `pipeline` changes on `endpoint`
    /// (replacing a watch of another pipeline or coordinator).
    pub(super) fn watch(&self, resource: &Resource, endpoint: &str, pipeline: &PipelineName) {
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if watches
            .get(resource)
            .is_some_and(|w| w.endpoint == endpoint && &w.pipeline == pipeline)
        {
            return;
        }
        let Ok(client) = self.client(endpoint) else {
            return;
        };
        let task = tokio::spawn(forward_changes(
            client,
            pipeline.clone(),
            resource.clone(),
            self.triggers.clone(),
        ));
        watches.insert(
            resource.clone(),
            PipelineWatch {
                endpoint: endpoint.to_string(),
                pipeline: pipeline.clone(),
                task,
            },
        );
    }

    /// Stops watching `resource`'s pipeline.
    pub(super) fn unwatch(&self, resource: &Resource) {
        self.watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(resource);
    }
}

/// The error for a refused control request.
pub(super) fn refused(endpoint: &str, what: &'static str, source: ControlError) -> EdgeError {
    EdgeError::Coordinator {
        endpoint: endpoint.to_string(),
        what,
        source,
    }
}

/// Sends `resource` to the controller when `pipeline` changes in a way its
/// decisions read (epoch aside: see [`decision_view`]), re-opening the
/// stream (with back-off) when it ends or cannot be opened. A coordinator
/// whose gates ack and report progress all the time then causes no
/// reconciliation at all while nothing is to be decided.
async fn forward_changes(
    mut client: ControlClient,
    pipeline: PipelineName,
    resource: Resource,
    triggers: UnboundedSender<Resource>,
) {
    let mut backoff = WATCH_BACKOFF.0;
    let mut last = None;
    loop {
        match client.watch(&pipeline).await {
            Ok(stream) => {
                let mut stream = Box::pin(stream);
                while let Some(Ok(status)) = stream.next().await {
                    backoff = WATCH_BACKOFF.0;
                    let view = decision_view(&status);
                    if last.as_ref() == Some(&view) {
                        continue;
                    }
                    last = Some(view);
                    if triggers.send(resource.clone()).is_err() {
                        return;
                    }
                }
            }
            Err(e) => debug!(%pipeline, error = %e, "pipeline watch not open yet"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(WATCH_BACKOFF.1);
    }
}

/// What of a status the controller acts on: the decisions' view without
/// the epoch (which moves with every horizon raise), and how many gates of
/// each colour are expected and connected. Acknowledgements (which dip and
/// recover with every epoch), watermarks and counters are not: the
/// resource's status shows them as of the last reconciliation.
fn decision_view(status: &PipelineStatus) -> (Option<PipelineView>, [[u32; 2]; 2]) {
    let view = Some(PipelineView {
        epoch: Epoch(0),
        ..PipelineView::of(status)
    });
    let counts = |c: Colour| {
        let g = status.gates(c);
        [g.expected, g.connected]
    };
    (view, [counts(Colour::Blue), counts(Colour::Green)])
}
