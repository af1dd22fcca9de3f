//! Errors of the coordinator, and the one place they become gRPC statuses.

use cutover_core::{CoreError, PipelineName, SessionError};
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
    /// A session broke the protocol.
    #[error(transparent)]
    Session(#[from] SessionError),
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
    /// The policy refused the caller (see [`crate::auth`]).
    #[error("{}", .0.message())]
    Refused(tonic::Status),
}

impl From<CoordinatorError> for Status {
    fn from(error: CoordinatorError) -> Status {
        let message = error.to_string();
        match error {
            CoordinatorError::Core(core) => match core {
                CoreError::InvalidPipelineName { .. }
                | CoreError::InvalidColour { .. }
                | CoreError::InvalidGate { .. }
                | CoreError::InvalidCoordinatorId { .. }
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
            CoordinatorError::Convert(_) => Status::invalid_argument(message),
            CoordinatorError::Session(session) => match session {
                SessionError::NotAHello
                | SessionError::SecondHello
                | SessionError::Empty
                | SessionError::NoGates
                | SessionError::TooManyGates { .. } => Status::invalid_argument(message),
                SessionError::NotOnSession { .. }
                | SessionError::AckWithoutGate { .. }
                | SessionError::AckNeverSent { .. }
                | SessionError::EpochNeverIssued { .. } => Status::failed_precondition(message),
            },
            CoordinatorError::UnknownPipeline(_) => Status::not_found(message),
            CoordinatorError::Contention { .. } => Status::aborted(message),
            CoordinatorError::GatesConnected { .. } => Status::failed_precondition(message),
            CoordinatorError::Refused(status) => status,
        }
    }
}
