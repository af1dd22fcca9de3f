//! The `cutover.v1.ControlService`: list, get, schedule, abort, promote,
//! complete and watch pipelines. `WatchPipeline` is latest-value: the stream
//! sends the status, waits for a change, and sends the status then, so a
//! slow reader skips intermediate states.

use std::sync::Arc;

use cutover_core::{CoreError, HorizonPolicy, PipelineState};
use cutover_proto::convert::{colour_from, pipeline_from, schedule_from, status_to};
use cutover_proto::v1;
use cutover_proto::v1::control_service_server::ControlService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::error::CoordinatorError;
use crate::registry::{Coordinator, PipelineCell};

/// The control service of a coordinator.
#[derive(Clone)]
pub struct ControlApi {
    coordinator: Coordinator,
}

impl ControlApi {
    /// The control service of `coordinator`.
    pub fn new(coordinator: Coordinator) -> Self {
        ControlApi { coordinator }
    }

    async fn cell(&self, raw: &str) -> Result<Arc<PipelineCell>, CoordinatorError> {
        self.coordinator.cell(&pipeline_from(raw)?).await
    }

    async fn change(
        &self,
        raw: &str,
        what: &'static str,
        propose: impl Fn(&PipelineState) -> Result<cutover_core::PipelineDoc, CoreError>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let cell = self.cell(raw).await?;
        let doc = self
            .coordinator
            .write(&cell, |core| propose(core).map(Some))
            .await?;
        if let Some(doc) = doc {
            info!(pipeline = %doc.name, epoch = %doc.epoch(), phase = ?doc.phase(), "{what}");
        }
        Ok(Response::new(status_to(&cell.status())))
    }
}

#[tonic::async_trait]
impl ControlService for ControlApi {
    async fn list_pipelines(
        &self,
        _request: Request<v1::ListPipelinesRequest>,
    ) -> Result<Response<v1::ListPipelinesResponse>, Status> {
        let mut pipelines = Vec::new();
        for name in self.coordinator.pipeline_names() {
            let cell = self.coordinator.cell(&name).await?;
            pipelines.push(status_to(&cell.status()));
        }
        Ok(Response::new(v1::ListPipelinesResponse { pipelines }))
    }

    async fn get_pipeline(
        &self,
        request: Request<v1::GetPipelineRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let cell = self.cell(&request.get_ref().pipeline).await?;
        Ok(Response::new(status_to(&cell.status())))
    }

    async fn schedule_transition(
        &self,
        request: Request<v1::ScheduleTransitionRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let (name, schedule) = schedule_from(request.get_ref()).map_err(CoordinatorError::from)?;
        self.change(name.as_str(), "scheduled transition", move |core| {
            core.propose_schedule(schedule)
        })
        .await
    }

    async fn abort_transition(
        &self,
        request: Request<v1::AbortTransitionRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        self.change(
            &request.get_ref().pipeline,
            "aborted transition",
            PipelineState::propose_abort,
        )
        .await
    }

    async fn promote(
        &self,
        request: Request<v1::PromoteRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        self.change(
            &request.get_ref().pipeline,
            "promoted transition",
            PipelineState::propose_promote,
        )
        .await
    }

    async fn complete_transition(
        &self,
        request: Request<v1::CompleteTransitionRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        self.change(
            &request.get_ref().pipeline,
            "completed transition",
            PipelineState::propose_complete,
        )
        .await
    }

    async fn create_pipeline(
        &self,
        request: Request<v1::CreatePipelineRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let request = request.get_ref();
        let name = pipeline_from(&request.pipeline).map_err(CoordinatorError::from)?;
        let owner = colour_from("owner", request.owner).map_err(CoordinatorError::from)?;
        let horizon = match request.horizon_window {
            0 => self.coordinator.config().horizon,
            window => HorizonPolicy::with_window(window),
        };
        let cell = self.coordinator.ensure_with(&name, owner, horizon).await?;
        Ok(Response::new(status_to(&cell.status())))
    }

    async fn delete_pipeline(
        &self,
        request: Request<v1::DeletePipelineRequest>,
    ) -> Result<Response<v1::DeletePipelineResponse>, Status> {
        let name = pipeline_from(&request.get_ref().pipeline).map_err(CoordinatorError::from)?;
        let epoch = self.coordinator.delete(&name).await?;
        Ok(Response::new(v1::DeletePipelineResponse { epoch }))
    }

    type WatchPipelineStream = ReceiverStream<Result<v1::PipelineStatus, Status>>;

    async fn watch_pipeline(
        &self,
        request: Request<v1::WatchPipelineRequest>,
    ) -> Result<Response<Self::WatchPipelineStream>, Status> {
        let cell = self.cell(&request.get_ref().pipeline).await?;
        let (tx, rx) = mpsc::channel(1);
        let coordinator = self.coordinator.clone();
        tokio::spawn(async move {
            let mut changes = cell.changes();
            let mut last: Option<v1::PipelineStatus> = None;
            loop {
                changes.borrow_and_update();
                let status = status_to(&cell.status());
                if last.as_ref() != Some(&status) {
                    if tx.send(Ok(status.clone())).await.is_err() {
                        return;
                    }
                    last = Some(status);
                }
                if cell.is_retired() {
                    let _ = tx
                        .send(Err(Status::not_found(format!(
                            "pipeline {} was deleted",
                            cell.name()
                        ))))
                        .await;
                    return;
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = coordinator.stopped() => {
                        let _ = tx.send(Err(Status::unavailable("coordinator shutting down"))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
