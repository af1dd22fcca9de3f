//! The typed control client: the `cutover.v1.ControlService` in domain
//! terms, for the command line, the controller, the demo, the benchmarks
//! and the tests. Requests are built and answers read in one place
//! (`cutover_proto::convert`); a refusal is a [`ControlError`] carrying the
//! coordinator's status.

use std::time::Duration;

use cutover_core::{Colour, Epoch, PipelineName, PipelineStatus, ScheduleRequest};
use cutover_proto::convert::{ConvertError, colour_to, schedule_to, status_from};
use cutover_proto::v1;
use cutover_proto::v1::control_service_client::ControlServiceClient;
use futures::{Stream, StreamExt};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::tls::{BearerToken, ClientTls};

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The endpoint is not a valid address.
    #[error("invalid coordinator endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The coordinator could not be reached.
    #[error("cannot reach the coordinator at {endpoint}: {source}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The coordinator refused the call (nothing changed).
    #[error("{:?}: {}", .0.code(), .0.message())]
    Refused(tonic::Status),
    /// The coordinator answered something that is not a valid status.
    #[error("malformed answer: {0}")]
    Malformed(#[from] ConvertError),
    /// A status stream ended.
    #[error("the status stream of {0} ended")]
    Ended(PipelineName),
    /// No matching status came in time.
    #[error("no matching status of {pipeline} within {limit:?}; last seen: {last}")]
    TimedOut {
        /// The pipeline.
        pipeline: PipelineName,
        /// How long it waited.
        limit: Duration,
        /// The last status the stream gave, in short ("none" if none came).
        last: String,
    },
}

impl ControlError {
    /// The gRPC code of a refusal (`None` for other errors).
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ControlError::Refused(status) => Some(status.code()),
            _ => None,
        }
    }

    /// The coordinator's status of a refusal (`None` for other errors).
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            ControlError::Refused(status) => Some(status),
            _ => None,
        }
    }
}

impl From<tonic::Status> for ControlError {
    fn from(status: tonic::Status) -> Self {
        ControlError::Refused(status)
    }
}

/// A pipeline whose stored state cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenPipeline {
    /// Its name as stored.
    pub pipeline: String,
    /// Where its state is.
    pub location: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What `ListPipelines` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// Every readable pipeline, sorted by name.
    pub pipelines: Vec<PipelineStatus>,
    /// The unreadable ones.
    pub broken: Vec<BrokenPipeline>,
}

/// A connection to a coordinator's control service; cheap to clone.
#[derive(Clone, Debug)]
pub struct ControlClient {
    inner: RawControl,
}

/// The generated control client with the caller's bearer token on every
/// call (see [`ControlClient::raw`]).
pub type RawControl = ControlServiceClient<InterceptedService<Channel, BearerToken>>;

fn read(status: tonic::Response<v1::PipelineStatus>) -> Result<PipelineStatus, ControlError> {
    Ok(status_from(status.get_ref())?)
}

impl ControlClient {
    /// Connects to the coordinator at `endpoint` (`http://host:7700`).
    /// For `https://`, TLS settings come from the environment
    /// ([`ClientTls::from_env`]); see [`ControlClient::connect_with`].
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self, ControlError> {
        Self::connect_with(endpoint, &ClientTls::from_env()).await
    }

    /// Connects to the coordinator at `endpoint` with `tls` for `https://`.
    pub async fn connect_with(
        endpoint: impl Into<String>,
        tls: &ClientTls,
    ) -> Result<Self, ControlError> {
        let endpoint = endpoint.into();
        let invalid = |reason: String| ControlError::InvalidEndpoint {
            endpoint: endpoint.clone(),
            reason,
        };
        let configured =
            Endpoint::from_shared(endpoint.clone()).map_err(|e| invalid(e.to_string()))?;
        let bearer = tls.bearer(&configured);
        let channel = tls
            .apply(configured)
            .map_err(invalid)?
            .connect()
            .await
            .map_err(|source| ControlError::Unreachable { endpoint, source })?;
        Ok(ControlClient {
            inner: ControlServiceClient::with_interceptor(channel, bearer),
        })
    }

    /// A client for `endpoint` that connects on first use, each attempt
    /// bounded by `connect_timeout` and each call by `timeout` (for a
    /// long-running process such as the controller). Several coordinators
    /// serving the same pipelines, separated by commas, share the calls
    /// (any of them answers with the whole fleet's state).
    pub fn lazy(
        endpoint: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, ControlError> {
        Self::lazy_with(endpoint, &ClientTls::from_env(), connect_timeout, timeout)
    }

    /// [`ControlClient::lazy`] with `tls` for `https://` coordinators.
    pub fn lazy_with(
        endpoint: &str,
        tls: &ClientTls,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, ControlError> {
        let endpoints = endpoint
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|address| {
                let invalid = |reason: String| ControlError::InvalidEndpoint {
                    endpoint: address.to_string(),
                    reason,
                };
                let endpoint = Endpoint::from_shared(address.to_string())
                    .map_err(|e| invalid(e.to_string()))?
                    .connect_timeout(connect_timeout)
                    .timeout(timeout);
                tls.apply(endpoint).map_err(invalid)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The token only if every coordinator is reached over TLS.
        let bearer = match endpoints
            .iter()
            .find(|e| e.uri().scheme_str() != Some("https"))
        {
            Some(plaintext) => tls.bearer(plaintext),
            None => endpoints
                .first()
                .map_or_else(BearerToken::default, |e| tls.bearer(e)),
        };
        let channel = match endpoints.as_slice() {
            [] => {
                return Err(ControlError::InvalidEndpoint {
                    endpoint: endpoint.to_string(),
                    reason: "no coordinator address".into(),
                });
            }
            [one] => one.connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        Ok(ControlClient {
            inner: ControlServiceClient::with_interceptor(channel, bearer),
        })
    }

    /// The generated client, for calls this one does not wrap (tests of
    /// malformed requests).
    pub fn raw(&mut self) -> &mut RawControl {
        &mut self.inner
    }

    /// Every pipeline, and the unreadable ones.
    pub async fn list(&mut self) -> Result<Listing, ControlError> {
        let reply = self
            .inner
            .list_pipelines(v1::ListPipelinesRequest {})
            .await?
            .into_inner();
        Ok(Listing {
            pipelines: reply
                .pipelines
                .iter()
                .map(status_from)
                .collect::<Result<_, _>>()?,
            broken: reply
                .broken
                .into_iter()
                .map(|b| BrokenPipeline {
                    pipeline: b.pipeline,
                    location: b.location,
                    reason: b.reason,
                })
                .collect(),
        })
    }

    /// The status of `pipeline`.
    pub async fn get(&mut self, pipeline: &PipelineName) -> Result<PipelineStatus, ControlError> {
        read(
            self.inner
                .get_pipeline(v1::GetPipelineRequest {
                    pipeline: pipeline.to_string(),
                })
                .await?,
        )
    }

    /// Schedules a transition.
    pub async fn schedule(
        &mut self,
        pipeline: &PipelineName,
        request: ScheduleRequest,
    ) -> Result<PipelineStatus, ControlError> {
        read(
            self.inner
                .schedule_transition(schedule_to(pipeline, &request))
                .await?,
        )
    }

    /// Aborts the pending transition.
    pub async fn abort(&mut self, pipeline: &PipelineName) -> Result<PipelineStatus, ControlError> {
        read(
            self.inner
                .abort_transition(v1::AbortTransitionRequest {
                    pipeline: pipeline.to_string(),
                })
                .await?,
        )
    }

    /// Promotes the transition waiting for it (the point of no return).
    pub async fn promote(
        &mut self,
        pipeline: &PipelineName,
    ) -> Result<PipelineStatus, ControlError> {
        read(
            self.inner
                .promote(v1::PromoteRequest {
                    pipeline: pipeline.to_string(),
                })
                .await?,
        )
    }

    /// Completes the drained transition (its old job stopped).
    pub async fn complete(
        &mut self,
        pipeline: &PipelineName,
    ) -> Result<PipelineStatus, ControlError> {
        read(
            self.inner
                .complete_transition(v1::CompleteTransitionRequest {
                    pipeline: pipeline.to_string(),
                })
                .await?,
        )
    }

    /// Creates `pipeline` owned by `owner` with a horizon window (`None`:
    /// the coordinator's); an existing one is returned unchanged.
    pub async fn create(
        &mut self,
        pipeline: &PipelineName,
        owner: Colour,
        horizon_window: Option<u64>,
    ) -> Result<PipelineStatus, ControlError> {
        read(
            self.inner
                .create_pipeline(v1::CreatePipelineRequest {
                    pipeline: pipeline.to_string(),
                    owner: colour_to(owner),
                    horizon_window: horizon_window.unwrap_or(0),
                })
                .await?,
        )
    }

    /// Deletes `pipeline`'s stored state; the epoch it had.
    pub async fn delete(&mut self, pipeline: &PipelineName) -> Result<Epoch, ControlError> {
        let reply = self
            .inner
            .delete_pipeline(v1::DeletePipelineRequest {
                pipeline: pipeline.to_string(),
            })
            .await?;
        Ok(Epoch(reply.get_ref().epoch))
    }

    /// Forgets the recorded gate operator `uid` of `colour`.
    pub async fn forget_operator(
        &mut self,
        pipeline: &PipelineName,
        colour: Colour,
        uid: &str,
    ) -> Result<PipelineStatus, ControlError> {
        read(
            self.inner
                .forget_operator(v1::ForgetOperatorRequest {
                    pipeline: pipeline.to_string(),
                    colour: colour_to(colour),
                    gate_uid: uid.to_string(),
                })
                .await?,
        )
    }

    /// The status of `pipeline` now and on every change (latest value).
    pub async fn watch(
        &mut self,
        pipeline: &PipelineName,
    ) -> Result<impl Stream<Item = Result<PipelineStatus, ControlError>> + use<>, ControlError>
    {
        let stream = self
            .inner
            .watch_pipeline(v1::WatchPipelineRequest {
                pipeline: pipeline.to_string(),
            })
            .await?
            .into_inner();
        Ok(stream.map(|status| Ok(status_from(&status?)?)))
    }

    /// Waits (at most `limit`) for a status of `pipeline` that satisfies
    /// `accept`, and returns it.
    pub async fn wait_for(
        &mut self,
        pipeline: &PipelineName,
        limit: Duration,
        accept: impl Fn(&PipelineStatus) -> bool,
    ) -> Result<PipelineStatus, ControlError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut statuses = Box::pin(self.watch(pipeline).await?);
        let mut last: Option<PipelineStatus> = None;
        loop {
            match tokio::time::timeout_at(deadline, statuses.next()).await {
                Ok(Some(status)) => {
                    let status = status?;
                    if accept(&status) {
                        return Ok(status);
                    }
                    last = Some(status);
                }
                Ok(None) => return Err(ControlError::Ended(pipeline.clone())),
                Err(_) => {
                    return Err(ControlError::TimedOut {
                        pipeline: pipeline.clone(),
                        limit,
                        last: last.as_ref().map_or_else(|| "none".into(), in_short),
                    });
                }
            }
        }
    }
}

/// A status in one line, for errors: phase, epoch, horizon, and per colour
/// the gates connected of those expected and the watermarks.
fn in_short(s: &PipelineStatus) -> String {
    let gates = |colour: Colour| {
        let g = s.gates(colour);
        format!(
            "{colour} {}/{} connected, watermarks {} to {}",
            g.connected, g.expected, g.lowest_watermark, g.highest_watermark
        )
    };
    format!(
        "phase {}, epoch {}, horizon {}, {}, {}",
        s.phase.map_or_else(|| "none".into(), |p| p.to_string()),
        s.plan.epoch,
        s.plan.horizon,
        gates(Colour::Blue),
        gates(Colour::Green)
    )
}
