//! The coordinators the resources name: one lazily connected channel per
//! address, and one `WatchPipeline` stream per resource whose every status
//! triggers a reconciliation of that resource.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cutover_crds::FlinkBlueGreenDeployment;
use cutover_proto::v1;
use cutover_proto::v1::control_service_client::ControlServiceClient;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tracing::debug;

use super::error::EdgeError;

type Resource = ObjectRef<FlinkBlueGreenDeployment>;

/// First and last pause before re-opening a broken pipeline watch.
const WATCH_BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// A pipeline watch, stopped when dropped.
struct PipelineWatch {
    endpoint: String,
    pipeline: String,
    task: JoinHandle<()>,
}

impl Drop for PipelineWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Channels to coordinators and the pipeline watches.
pub(super) struct Coordinators {
    channels: Mutex<HashMap<String, Channel>>,
    watches: Mutex<HashMap<Resource, PipelineWatch>>,
    triggers: UnboundedSender<Resource>,
}

impl Coordinators {
    pub(super) fn new(triggers: UnboundedSender<Resource>) -> Self {
        Coordinators {
            channels: Mutex::new(HashMap::new()),
            watches: Mutex::new(HashMap::new()),
            triggers,
        }
    }

    /// A control client for `endpoint` (connected on first use).
    pub(super) fn client(
        &self,
        endpoint: &str,
    ) -> Result<ControlServiceClient<Channel>, EdgeError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(endpoint) {
            return Ok(ControlServiceClient::new(channel.clone()));
        }
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| EdgeError::CoordinatorAddress {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        channels.insert(endpoint.to_string(), channel.clone());
        Ok(ControlServiceClient::new(channel))
    }

    /// The pipeline's status; `None` while the coordinator does not know it
    /// (no gate has connected yet).
    pub(super) async fn pipeline(
        &self,
        endpoint: &str,
        pipeline: &str,
    ) -> Result<Option<v1::PipelineStatus>, EdgeError> {
        let reply = self
            .client(endpoint)?
            .get_pipeline(v1::GetPipelineRequest {
                pipeline: pipeline.to_string(),
            })
            .await;
        match reply {
            Ok(status) => Ok(Some(status.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(refused(endpoint, "GetPipeline", &status)),
        }
    }

    /// Creates the pipeline (owned by `owner`, horizon window `window` in
    /// key units) unless it exists; returns its status.
    pub(super) async fn create_pipeline(
        &self,
        endpoint: &str,
        pipeline: &str,
        owner: cutover_core::Colour,
        window: u64,
    ) -> Result<v1::PipelineStatus, EdgeError> {
        self.client(endpoint)?
            .create_pipeline(v1::CreatePipelineRequest {
                pipeline: pipeline.to_string(),
                owner: cutover_proto::convert::colour_to(owner),
                horizon_window: window,
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| refused(endpoint, "CreatePipeline", &s))
    }

    /// Reconciles `resource` whenever `pipeline` changes on `endpoint`
    /// (replacing a watch of another pipeline or coordinator).
    pub(super) fn watch(&self, resource: &Resource, endpoint: &str, pipeline: &str) {
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if watches
            .get(resource)
            .is_some_and(|w| w.endpoint == endpoint && w.pipeline == pipeline)
        {
            return;
        }
        let Ok(client) = self.client(endpoint) else {
            return;
        };
        let task = tokio::spawn(forward_changes(
            client,
            pipeline.to_string(),
            resource.clone(),
            self.triggers.clone(),
        ));
        watches.insert(
            resource.clone(),
            PipelineWatch {
                endpoint: endpoint.to_string(),
                pipeline: pipeline.to_string(),
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
pub(super) fn refused(endpoint: &str, what: &'static str, status: &tonic::Status) -> EdgeError {
    EdgeError::Coordinator {
        endpoint: endpoint.to_string(),
        what,
        code: status.code(),
        message: status.message().to_string(),
    }
}

/// Sends `resource` to the controller on every status of `pipeline`,
/// re-opening the stream (with back-off) when it ends or cannot be opened.
async fn forward_changes(
    mut client: ControlServiceClient<Channel>,
    pipeline: String,
    resource: Resource,
    triggers: UnboundedSender<Resource>,
) {
    let mut backoff = WATCH_BACKOFF.0;
    loop {
        let request = v1::WatchPipelineRequest {
            pipeline: pipeline.clone(),
        };
        match client.watch_pipeline(request).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                while let Ok(Some(_)) = stream.message().await {
                    backoff = WATCH_BACKOFF.0;
                    if triggers.send(resource.clone()).is_err() {
                        return;
                    }
                }
            }
            Err(status) => debug!(%pipeline, code = ?status.code(), "pipeline watch not open yet"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(WATCH_BACKOFF.1);
    }
}
