//! What a decision asks the edge to do: [`Reconcile`].

use std::time::Duration;

use cutover_core::Colour;

use crate::observed::Memory;

/// One step for the edge to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create `<name>-<colour>` from the template (starting from
    /// `savepoint` if given), owned by the resource.
    CreateChild {
        /// Its colour.
        colour: Colour,
        /// Savepoint or checkpoint to start from.
        savepoint: Option<String>,
    },
    /// Ask the Flink operator for a savepoint of the child.
    TriggerSavepoint {
        /// Its colour.
        colour: Colour,
    },
    /// Suspend the child's job with a savepoint.
    SuspendChild {
        /// Its colour.
        colour: Colour,
    },
    /// Resume the child's suspended job from its savepoint.
    ResumeChild {
        /// Its colour.
        colour: Colour,
    },
    /// Delete the child.
    DeleteChild {
        /// Its colour.
        colour: Colour,
    },
    /// Schedule the cutover to `target` at EARLIEST.
    ScheduleCutover {
        /// The colour taking over.
        target: Colour,
        /// Whether it promotes itself (`spec.configuration.autoPromote`).
        auto_promote: bool,
    },
    /// Promote the pending transition (and clear the promote annotation).
    Promote,
    /// Abort the pending transition.
    AbortTransition,
    /// Remove the abort annotation (the request was acted on or refused).
    ForgetAbortRequest,
    /// Mark the transition complete (the old colour is stopped).
    CompleteTransition,
}

impl Action {
    /// The action's name (for logs and metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Action::CreateChild { .. } => "CreateChild",
            Action::TriggerSavepoint { .. } => "TriggerSavepoint",
            Action::SuspendChild { .. } => "SuspendChild",
            Action::ResumeChild { .. } => "ResumeChild",
            Action::DeleteChild { .. } => "DeleteChild",
            Action::ScheduleCutover { .. } => "ScheduleCutover",
            Action::Promote => "Promote",
            Action::ForgetAbortRequest => "ForgetAbortRequest",
            Action::AbortTransition => "AbortTransition",
            Action::CompleteTransition => "CompleteTransition",
        }
    }
}

/// The outcome of one decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconcile {
    /// Steps, in order.
    pub actions: Vec<Action>,
    /// What to remember.
    pub memory: Memory,
    /// Why (a Kubernetes Event: reason, message), when something happened.
    pub event: Option<(&'static str, String)>,
    /// An error to show in the status, if any.
    pub error: Option<String>,
    /// Look again after this long even if nothing changes.
    pub requeue_after: Option<Duration>,
}
