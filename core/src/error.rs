//! Every way a request to the protocol core can be refused. A refused request
//! changes nothing.

use crate::domain::{Colour, Epoch, Incarnation, Key};
use crate::transition::Phase;

/// A request the core refuses; the state it was asked to change is untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A pipeline name breaks the naming rules.
    #[error("invalid pipeline name {name:?}: {reason}")]
    InvalidPipelineName {
        /// The name as given (cut to 80 characters).
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A colour name is neither BLUE nor GREEN (in any case).
    #[error("colour must be BLUE or GREEN, not {given:?}")]
    InvalidColour {
        /// The name as given (cut to 80 characters).
        given: String,
    },
    /// A gate identity is malformed (empty uid, subtask index out of range...).
    #[error("invalid gate {gate}: {reason}")]
    InvalidGate {
        /// The gate, as `colour/uid[subtask]`.
        gate: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A coordinator id is not 1 to 128 characters of `[A-Za-z0-9._-]`
    /// (not starting with a dot).
    #[error(
        "invalid coordinator id {id:?}: 1 to 128 characters of letters, digits, '.', '_' and '-', not starting with '.'"
    )]
    InvalidCoordinatorId {
        /// The id given (at most 80 characters of it).
        id: String,
    },
    /// The same gate is already registered on another live session with the
    /// same or a newer attempt.
    #[error(
        "gate {gate} (attempt {attempt}) is already registered on another live session with attempt {live_attempt}"
    )]
    DuplicateGate {
        /// The gate, as `colour/uid[subtask]`.
        gate: String,
        /// Attempt of the refused registration.
        attempt: u32,
        /// Attempt of the live registration.
        live_attempt: u32,
    },
    /// A message names a gate that is not registered on this session.
    #[error("gate {gate} is not registered on this session")]
    UnknownGate {
        /// The gate, as `colour/uid[subtask]`.
        gate: String,
    },
    /// A cutover key lies below the persisted horizon.
    #[error("cutover key {requested} is below the horizon; the earliest allowed key is {earliest}")]
    BelowHorizon {
        /// The key asked for.
        requested: Key,
        /// The earliest key a cutover may use now.
        earliest: Key,
    },
    /// `EARLIEST` was asked before any gate reported progress.
    #[error(
        "no horizon has been granted yet (no gate has reported progress): schedule at an explicit key or wait for the gates"
    )]
    NoHorizonYet,
    /// A cutover key does not lie after the last segment's start.
    #[error("cutover key {requested} must lie after the start of the last segment ({last_start})")]
    NotAfterLastSegment {
        /// The key asked for.
        requested: Key,
        /// Start of the current last segment.
        last_start: Key,
    },
    /// A transition is still abortable; abort or let it pass first.
    #[error(
        "a transition to {to} at key {at} is still pending (SCHEDULED); abort it or wait until it is cutting over"
    )]
    TransitionPending {
        /// Its target colour.
        to: Colour,
        /// Its cutover key.
        at: Key,
    },
    /// The target colour already owns the end of the timeline.
    #[error("{colour} already owns the timeline's last segment")]
    AlreadyOwner {
        /// The requested target.
        colour: Colour,
    },
    /// There is no transition in the state the request needs.
    #[error("no transition is {expected}")]
    NoTransition {
        /// What the request needed ("pending", "drained", ...).
        expected: &'static str,
    },
    /// The horizon already passed the cutover: it can no longer be aborted.
    #[error(
        "the cutover at key {at} is irrevocable: the horizon {horizon} already passed it; schedule a rollback instead"
    )]
    Irrevocable {
        /// Cutover key.
        at: Key,
        /// Persisted horizon.
        horizon: Key,
    },
    /// Promote on a transition that does not wait for it.
    #[error("the transition does not wait for promotion (auto_promote or already promoted)")]
    NotAwaitingPromotion,
    /// Complete on a transition that is not DRAINED.
    #[error("the transition is {phase}, not DRAINED")]
    NotDrained {
        /// Its phase.
        phase: Phase,
    },
    /// An ack names an epoch the coordinator never sent.
    #[error("ack for epoch {acked}, but the current epoch is {current}")]
    AckFromFuture {
        /// Epoch acknowledged.
        acked: Epoch,
        /// Current epoch.
        current: Epoch,
    },
    /// A plan document older than the installed one.
    #[error("document epoch {proposed} is older than the installed epoch {current}")]
    StaleDocument {
        /// Epoch installed.
        current: Epoch,
        /// Epoch offered.
        proposed: Epoch,
    },
    /// A document or timeline breaks an invariant (read from a store).
    #[error("invalid plan document: {reason}")]
    InvalidDocument {
        /// Which invariant.
        reason: String,
    },
    /// A change would alter the owner of a key below the granted horizon.
    #[error("change would alter the owner of key {key}, below the granted horizon {horizon}")]
    FenceViolation {
        /// First key whose owner would change.
        key: Key,
        /// Persisted horizon.
        horizon: Key,
    },
    /// A colour's retirement floor fell, or rose above the horizon.
    #[error(
        "{colour}'s retirement floor {floor} must lie between its previous floor {previous} and the horizon {horizon}"
    )]
    InvalidRetirement {
        /// The colour.
        colour: Colour,
        /// Proposed floor.
        floor: Key,
        /// Floor of the current document.
        previous: Key,
        /// Horizon of the proposed document.
        horizon: Key,
    },
    /// A document of another incarnation of the pipeline (deleted and
    /// created again) is not a successor of the installed one.
    #[error("document of pipeline incarnation {offered} cannot follow incarnation {installed}")]
    OtherIncarnation {
        /// Incarnation installed.
        installed: Incarnation,
        /// Incarnation offered.
        offered: Incarnation,
    },
    /// Abort of a promoted cutover: promotion is the point of no return.
    #[error("the cutover at key {at} was promoted: it is irrevocable; schedule a rollback instead")]
    Promoted {
        /// Cutover key.
        at: Key,
    },
    /// A value lies outside the bounds the protocol allows.
    #[error("{what} {value} is out of bounds: it must be {bound}")]
    OutOfBounds {
        /// What the value is.
        what: &'static str,
        /// The value as given.
        value: String,
        /// The bound, in words.
        bound: String,
    },
    /// The same gate listed twice in one registration.
    #[error("gate {gate} is listed twice in one registration")]
    GateListedTwice {
        /// The gate, as `colour/uid[subtask]`.
        gate: String,
    },
    /// A recorded gate operator cannot be forgotten while its gates run.
    #[error(
        "gate operator {colour}/{gate_uid} still has {connected} connected gates; stop them before forgetting it"
    )]
    OperatorConnected {
        /// Colour of the operator.
        colour: Colour,
        /// Operator uid (cut to 80 characters).
        gate_uid: String,
        /// Its gates connected now.
        connected: u32,
    },
    /// An operator neither recorded nor known from a gate.
    #[error("no gate operator {colour}/{gate_uid} is recorded or known")]
    UnknownOperator {
        /// Colour of the operator.
        colour: Colour,
        /// Operator uid (cut to 80 characters).
        gate_uid: String,
    },
}
