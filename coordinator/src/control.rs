//! The `cutover.v1.ControlService`: list, get, schedule, abort, promote,
//! complete, create, delete, forget an operator, and watch pipelines.
//! `WatchPipeline` is latest-value: the stream sends the status, waits for a
//! change, and sends the status then, so a slow reader skips intermediate
//! states. Every mutating call is logged once as an audit event (target
//! `cutover::audit`): caller, method, pipeline, request, outcome, and the
//! resulting epoch and phase; and counted in
//! `cutover_control_requests_total{method,code}`.

use std::sync::Arc;

use cutover_core::{CoreError, HorizonPolicy, PipelineState};
use cutover_proto::convert::{colour_from, pipeline_from, schedule_from, status_to};
use cutover_proto::v1;
use cutover_proto::v1::control_service_server::ControlService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::info;
use tracing::warn;

use crate::admission::{Admission, caller_key};
use crate::auth::policy::Action;
use crate::error::CoordinatorError;
use crate::metrics::ControlLabel;
use crate::registry::{Coordinator, PipelineCell};

/// The control service of a coordinator.
#[derive(Clone)]
pub struct ControlApi {
    coordinator: Coordinator,
    admission: Arc<Admission>,
}

impl ControlApi {
    /// The control service of `coordinator`, its mutating calls limited
    /// per caller by `admission`.
    pub fn new(coordinator: Coordinator, admission: Arc<Admission>) -> Self {
        ControlApi {
            coordinator,
            admission,
        }
    }

    async fn cell(&self, raw: &str) -> Result<Arc<PipelineCell>, CoordinatorError> {
        self.coordinator.cell(&pipeline_from(raw)?).await
    }

    /// Writes what `propose` makes of the pipeline, for a caller
    /// [`Self::authorise`] let through, and audits the outcome.
    async fn change<T>(
        &self,
        request: &Request<T>,
        method: &'static str,
        raw: &str,
        propose: impl Fn(&PipelineState) -> Result<cutover_core::PipelineDoc, CoreError>,
    ) -> Result<Response<v1::PipelineStatus>, Status>
    where
        T: std::fmt::Debug,
    {
        let outcome = async {
            let cell = self.cell(raw).await?;
            self.coordinator
                .write(&cell, |core| propose(core).map(Some))
                .await?;
            Ok(status_to(&self.coordinator.status(&cell)))
        }
        .await;
        self.audited(request, method, raw, outcome)
    }

    /// Logs a mutating call once (target `cutover::audit`), counts it
    /// (`cutover_control_requests_total{method,code}`) and answers it.
    fn audited<T: std::fmt::Debug>(
        &self,
        request: &Request<T>,
        method: &'static str,
        pipeline: &str,
        outcome: Result<v1::PipelineStatus, CoordinatorError>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let outcome = outcome.map_err(Status::from).map(|status| {
            let epoch = status.plan.as_ref().map_or(0, |p| p.epoch);
            let phase = v1::Phase::try_from(status.phase).map_or("UNKNOWN", |p| p.as_str_name());
            (status, epoch, phase)
        });
        self.audit(request, method, pipeline, outcome)
            .map(|(status, _, _)| Response::new(status))
    }

    /// The audit of every mutating call: `outcome` carries, on success,
    /// the answer with the resulting epoch and phase.
    fn audit<T: std::fmt::Debug, A>(
        &self,
        request: &Request<T>,
        method: &'static str,
        pipeline: &str,
        outcome: Result<(A, u64, &'static str), Status>,
    ) -> Result<(A, u64, &'static str), Status> {
        let caller = caller(self.coordinator.config().tokens.as_deref(), request);
        let pipeline: String = pipeline.chars().take(80).collect();
        let counted = |code: tonic::Code| {
            self.coordinator
                .metrics()
                .control_requests
                .get_or_create(&ControlLabel {
                    method,
                    code: code_name(code),
                })
                .inc();
        };
        match outcome {
            Ok((answer, epoch, phase)) => {
                counted(tonic::Code::Ok);
                info!(target: "cutover::audit", %caller, method, %pipeline, request = %audited_request(request.get_ref()), outcome = "OK", epoch, phase, "control call");
                Ok((answer, epoch, phase))
            }
            Err(status) => {
                counted(status.code());
                warn!(target: "cutover::audit", %caller, method, %pipeline, request = %audited_request(request.get_ref()), outcome = ?status.code(), reason = status.message(), "control call refused");
                Err(status)
            }
        }
    }
}

impl ControlApi {
    /// Whether the caller of `request` may take `action` on `pipeline`
    /// (always, without a policy), and, for a mutating call (`method`),
    /// whether it is within its call rate. A refused mutating call is
    /// audited and counted like every other.
    async fn authorise<T: std::fmt::Debug>(
        &self,
        request: &Request<T>,
        method: Option<&'static str>,
        action: Action,
        pipeline: &str,
    ) -> Result<(), Status> {
        let checked = self.identify(request).await.and_then(|identity| {
            self.authorise_as(request, identity.as_deref(), method, action, pipeline)
        });
        if let (Err(status), Some(method)) = (&checked, method) {
            let refused: Result<((), u64, &'static str), Status> = Err(status.clone());
            let _ = self.audit(request, method, pipeline, refused);
        }
        checked
    }

    /// Who calls (see [`crate::auth::admitted_identity`]).
    async fn identify<T>(&self, request: &Request<T>) -> Result<Option<String>, Status> {
        crate::auth::admitted_identity(self.coordinator.config(), &self.admission, request).await
    }

    /// [`Self::authorise`] for a caller already identified, without the
    /// audit.
    fn authorise_as<T>(
        &self,
        request: &Request<T>,
        identity: Option<&str>,
        method: Option<&'static str>,
        action: Action,
        pipeline: &str,
    ) -> Result<(), Status> {
        // A refused mutating call counts against the caller's rate too.
        match method {
            Some(_) => self.admission.take_call(
                &caller_key(identity, request.remote_addr()),
                std::time::Instant::now(),
            ),
            None => Ok(()),
        }
        .and_then(|()| match &self.coordinator.config().authoriser {
            Some(authoriser) => authoriser.check(identity, action, pipeline),
            None => Ok(()),
        })
    }
}

/// A request as the audit log shows it: at most [`AUDITED_REQUEST`]
/// characters of its debug form.
fn audited_request<T: std::fmt::Debug>(request: &T) -> String {
    let mut text = format!("{request:?}");
    if text.len() > AUDITED_REQUEST {
        let mut end = AUDITED_REQUEST;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Longest request an audit line shows.
const AUDITED_REQUEST: usize = 1024;

/// The canonical name of a gRPC status code (`FAILED_PRECONDITION`).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Who called: its identity (a token's, as accepted before, or its client
/// certificate's), if any, and its address.
fn caller<T>(tokens: Option<&crate::auth::token::TokenAuth>, request: &Request<T>) -> String {
    let address = request
        .remote_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string());
    match crate::auth::identify_offline(tokens, request)
        .ok()
        .flatten()
    {
        Some(identity) => format!("{identity}@{address}"),
        None => address,
    }
}

#[tonic::async_trait]
impl ControlService for ControlApi {
    async fn list_pipelines(
        &self,
        request: Request<v1::ListPipelinesRequest>,
    ) -> Result<Response<v1::ListPipelinesResponse>, Status> {
        // With a policy: an unauthenticated caller is refused, and the
        // listing shows only the pipelines the caller may view.
        let identity = self.identify(&request).await?;
        let viewable = |name: &str| {
            self.authorise_as(&request, identity.as_deref(), None, Action::View, name)
                .is_ok()
        };
        let broken = self.coordinator.broken().all();
        let mut pipelines = Vec::new();
        for name in self.coordinator.pipeline_names() {
            if broken.contains_key(&name) || !viewable(name.as_str()) {
                continue;
            }
            match self.coordinator.cell(&name).await {
                Ok(cell) => pipelines.push(status_to(&self.coordinator.status(&cell))),
                // Deleted or broken since the names were read.
                Err(CoordinatorError::UnknownPipeline(_) | CoordinatorError::Store(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let broken = self
            .coordinator
            .broken()
            .all()
            .into_iter()
            .filter(|(name, _)| viewable(name.as_str()))
            .map(|(name, b)| v1::BrokenPipeline {
                pipeline: name.to_string(),
                location: b.location,
                reason: b.reason,
            })
            .collect();
        Ok(Response::new(v1::ListPipelinesResponse {
            pipelines,
            broken,
        }))
    }

    async fn get_pipeline(
        &self,
        request: Request<v1::GetPipelineRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let raw = &request.get_ref().pipeline;
        self.authorise(&request, None, Action::View, raw).await?;
        let cell = self.cell(raw).await?;
        Ok(Response::new(status_to(&self.coordinator.status(&cell))))
    }

    async fn schedule_transition(
        &self,
        request: Request<v1::ScheduleTransitionRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let raw = request.get_ref().pipeline.clone();
        self.authorise(&request, Some("ScheduleTransition"), Action::Operate, &raw)
            .await?;
        let (_, schedule) = match schedule_from(request.get_ref()) {
            Ok(parsed) => parsed,
            Err(e) => return self.audited(&request, "ScheduleTransition", &raw, Err(e.into())),
        };
        self.change(&request, "ScheduleTransition", &raw, move |core| {
            core.propose_schedule(schedule)
        })
        .await
    }

    async fn abort_transition(
        &self,
        request: Request<v1::AbortTransitionRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let raw = &request.get_ref().pipeline;
        self.authorise(&request, Some("AbortTransition"), Action::Operate, raw)
            .await?;
        self.change(
            &request,
            "AbortTransition",
            raw,
            PipelineState::propose_abort,
        )
        .await
    }

    async fn promote(
        &self,
        request: Request<v1::PromoteRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let raw = &request.get_ref().pipeline;
        self.authorise(&request, Some("Promote"), Action::Operate, raw)
            .await?;
        self.change(&request, "Promote", raw, PipelineState::propose_promote)
            .await
    }

    async fn complete_transition(
        &self,
        request: Request<v1::CompleteTransitionRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let raw = &request.get_ref().pipeline;
        self.authorise(&request, Some("CompleteTransition"), Action::Operate, raw)
            .await?;
        self.change(
            &request,
            "CompleteTransition",
            raw,
            PipelineState::propose_complete,
        )
        .await
    }

    async fn create_pipeline(
        &self,
        request: Request<v1::CreatePipelineRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let body = request.get_ref();
        self.authorise(
            &request,
            Some("CreatePipeline"),
            Action::Administer,
            &body.pipeline,
        )
        .await?;
        let outcome = async {
            let name = pipeline_from(&body.pipeline)?;
            let owner = colour_from("owner", body.owner)?;
            let horizon = match body.horizon_window {
                0 => self.coordinator.config().horizon,
                window => HorizonPolicy::new(window)?,
            };
            let cell = self.coordinator.ensure_with(&name, owner, horizon).await?;
            Ok(status_to(&self.coordinator.status(&cell)))
        }
        .await;
        self.audited(&request, "CreatePipeline", &body.pipeline, outcome)
    }

    async fn forget_operator(
        &self,
        request: Request<v1::ForgetOperatorRequest>,
    ) -> Result<Response<v1::PipelineStatus>, Status> {
        let body = request.get_ref();
        self.authorise(
            &request,
            Some("ForgetOperator"),
            Action::Operate,
            &body.pipeline,
        )
        .await?;
        let outcome = async {
            let name = pipeline_from(&body.pipeline)?;
            let colour = colour_from("colour", body.colour)?;
            let cell = self
                .coordinator
                .forget_operator(&name, colour, &body.gate_uid)
                .await?;
            Ok(status_to(&self.coordinator.status(&cell)))
        }
        .await;
        self.audited(&request, "ForgetOperator", &body.pipeline, outcome)
    }

    async fn delete_pipeline(
        &self,
        request: Request<v1::DeletePipelineRequest>,
    ) -> Result<Response<v1::DeletePipelineResponse>, Status> {
        let raw = &request.get_ref().pipeline;
        self.authorise(&request, Some("DeletePipeline"), Action::Administer, raw)
            .await?;
        let outcome = async {
            let name = pipeline_from(raw)?;
            self.coordinator.delete(&name).await
        }
        .await;
        let outcome = outcome
            .map_err(Status::from)
            .map(|epoch| ((), epoch, "DELETED"));
        self.audit(&request, "DeletePipeline", raw, outcome)
            .map(|((), epoch, _)| Response::new(v1::DeletePipelineResponse { epoch }))
    }

    type WatchPipelineStream = ReceiverStream<Result<v1::PipelineStatus, Status>>;

    async fn watch_pipeline(
        &self,
        request: Request<v1::WatchPipelineRequest>,
    ) -> Result<Response<Self::WatchPipelineStream>, Status> {
        self.authorise(&request, None, Action::View, &request.get_ref().pipeline)
            .await?;
        let cell = self.cell(&request.get_ref().pipeline).await?;
        let (tx, rx) = mpsc::channel(1);
        let coordinator = self.coordinator.clone();
        tokio::spawn(async move {
            let mut changes = cell.changes();
            let mut last: Option<v1::PipelineStatus> = None;
            loop {
                changes.borrow_and_update();
                let status = status_to(&coordinator.status(&cell));
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
