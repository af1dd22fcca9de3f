//! Errors of the coordinator, and the one place they become gRPC statuses.

use cutover_core::{CoreError, Epoch, PipelineName};
use cutover_proto::convert::ConvertError;
use tonic::Status;

use crate::store::StoreError;

/// Why a coordinator operation failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The protocol core refused the request.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A message from the wire is malformed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// No such pipeline in this coordinator or its store.
    #[error("unknown pipeline {0}")]
    UnknownPipeline(PipelineName),
    /// Other writers kept winning the compare-and-swap.
    #[error("pipeline {pipeline}: gave up after {attempts} compare-and-swap conflicts; retry")]
    Contention {
        /// The pipeline.
        pipeline: PipelineName,
        /// Attempts made.
        attempts: u32,
    },
    /// A session broke the protocol (wrong first message, ack for a pipeline
    /// it has no gate in, too many gates...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// An ack for an epoch this session was never sent.
    #[error(
        "ack for epoch {acked} of pipeline {pipeline}, but this session was sent epoch {sent} at most"
    )]
    AckNeverSent {
        /// The pipeline.
        pipeline: PipelineName,
        /// Epoch acked.
        acked: u64,
        /// Highest epoch sent.
        sent: u64,
    },
    /// A pipeline cannot be deleted while gates are connected to it.
    #[error("pipeline {pipeline} still has {connected} connected gates; stop its jobs first")]
    GatesConnected {
        /// The pipeline.
        pipeline: PipelineName,
        /// Gates connected now.
        connected: u32,
    },
    /// The coordinator is shutting down.
    #[error("coordinator is shutting down")]
    ShuttingDown,
    /// A client claims to hold an epoch the pipeline's incarnation never had.
    #[error(
        "the client holds epoch {held} of pipeline {pipeline}, but the newest stored epoch is {newest}; the client's plan does not come from this pipeline's store"
    )]
    EpochNeverIssued {
        /// The pipeline.
        pipeline: PipelineName,
        /// Epoch the client claims to hold.
        held: Epoch,
        /// Newest epoch stored.
        newest: Epoch,
    },
    /// An ack for a pipeline with no gate on the session.
    #[error("ack for pipeline {pipeline}, which has no gate on this session")]
    AckWithoutGate {
        /// The pipeline.
        pipeline: PipelineName,
    },
    /// A message names a pipeline with no gate on the session.
    #[error("this session has no gate in pipeline {pipeline}")]
    NotOnSession {
        /// The pipeline.
        pipeline: PipelineName,
    },
}

impl From<CoordinatorError> for Status {
    fn from(error: CoordinatorError) -> Status {
        let message = error.to_string();
        match error {
            CoordinatorError::Core(core) => match core {
                CoreError::InvalidPipelineName { .. }
                | CoreError::InvalidColour { .. }
                | CoreError::InvalidGate { .. }
                | CoreError::GateListedTwice { .. }
                | CoreError::OutOfBounds { .. }
                | CoreError::InvalidDocument { .. } => Status::invalid_argument(message),
                CoreError::DuplicateGate { .. } => Status::already_exists(message),
                CoreError::StaleDocument { .. } | CoreError::OtherIncarnation { .. } => {
                    Status::aborted(message)
                }
                CoreError::FenceViolation { .. } | CoreError::InvalidRetirement { .. } => {
                    Status::internal(message)
                }
                CoreError::UnknownOperator { .. } => Status::not_found(message),
                CoreError::UnknownGate { .. }
                | CoreError::BelowHorizon { .. }
                | CoreError::NoHorizonYet
                | CoreError::NotAfterLastSegment { .. }
                | CoreError::TransitionPending { .. }
                | CoreError::AlreadyOwner { .. }
                | CoreError::NoTransition { .. }
                | CoreError::Irrevocable { .. }
                | CoreError::NotAwaitingPromotion
                | CoreError::NotDrained { .. }
                | CoreError::Promoted { .. }
                | CoreError::OperatorConnected { .. }
                | CoreError::AckFromFuture { .. } => Status::failed_precondition(message),
            },
            CoordinatorError::Store(StoreError::Corrupt { .. }) => Status::data_loss(message),
            CoordinatorError::Store(_) | CoordinatorError::ShuttingDown => {
                Status::unavailable(message)
            }
            CoordinatorError::Convert(_) | CoordinatorError::Protocol(_) => {
                Status::invalid_argument(message)
            }
            CoordinatorError::UnknownPipeline(_) => Status::not_found(message),
            CoordinatorError::Contention { .. } => Status::aborted(message),
            CoordinatorError::AckNeverSent { .. }
            | CoordinatorError::GatesConnected { .. }
            | CoordinatorError::EpochNeverIssued { .. }
            | CoordinatorError::AckWithoutGate { .. }
            | CoordinatorError::NotOnSession { .. } => Status::failed_precondition(message),
        }
    }
}
