//! The pipeline document: everything that is persisted about a pipeline, as
//! one value that stores write atomically with a compare-and-swap.

use serde::{Deserialize, Serialize};

use crate::domain::{Colour, Epoch, Incarnation, Key, PipelineName};
use crate::error::CoreError;
use crate::fence;
use crate::horizon::HorizonPolicy;
use crate::limits::check_horizon_window;
use crate::operators::GateOperators;
use crate::plan::Plan;
use crate::transition::{Phase, Transition, TransitionState};

/// Fields of a stored object this version does not know, kept as they were
/// so that a document written by a newer coordinator survives our writes.
pub type UnknownFields = serde_json::Map<String, serde_json::Value>;

/// A field of documents written before retirement floors existed (segments
/// below it had been merged); it carries nothing the floors need and is
/// dropped on the next write.
const LEGACY_COMPACTED_BELOW: &str = "compacted_below";

/// Version of the document layout.
pub const SCHEMA_VERSION: u32 = 1;

/// How many closed transitions a document keeps.
pub const HISTORY_LEN: usize = 16;

/// The durable state of one pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDoc {
    /// Layout version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// The pipeline.
    pub name: PipelineName,
    /// Timeline, horizon, epoch and mode.
    pub plan: Plan,
    /// Epoch at which the timeline last changed (a gate holding this epoch's
    /// segments needs only the new horizon).
    pub segments_epoch: Epoch,
    /// Horizon settings.
    pub policy: HorizonPolicy,
    /// The latest transition.
    pub transition: Option<Transition>,
    /// Earlier transitions, newest last, at most [`HISTORY_LEN`].
    pub history: Vec<Transition>,
    /// Gate operators of the colour that will have to drain (see
    /// [`crate::operators`]); a restarted coordinator waits for them.
    #[serde(default)]
    pub operators: GateOperators,
    /// Fields a newer version wrote; kept on every write.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl PipelineDoc {
    /// A new pipeline of `incarnation`, owned entirely by `owner`.
    pub fn new(
        name: PipelineName,
        owner: Colour,
        policy: HorizonPolicy,
        incarnation: Incarnation,
    ) -> Self {
        let plan = Plan::new(owner, incarnation);
        PipelineDoc {
            schema: SCHEMA_VERSION,
            name,
            segments_epoch: plan.epoch,
            plan,
            policy,
            transition: None,
            history: Vec::new(),
            operators: GateOperators::default(),
            unknown: UnknownFields::new(),
        }
    }

    /// The pipeline's incarnation.
    pub fn incarnation(&self) -> Incarnation {
        self.plan.incarnation
    }

    /// Below this key no colour emits, and the timeline keeps no segment:
    /// the lower of the two retirement floors.
    pub fn compacted_below(&self) -> Key {
        self.plan.retired.lowest()
    }

    /// The colour whose operators this document must record: the old colour
    /// of a transition in flight, otherwise the active colour.
    pub fn recorded_colour(&self) -> Colour {
        match &self.transition {
            Some(t) if t.state == TransitionState::Pending => t.from,
            _ => self.active(),
        }
    }

    /// The colours whose operators this document records: the active one,
    /// and during a transition both (the new colour's are then known in
    /// full once it becomes the active one, whichever coordinators serve
    /// its gates).
    pub fn recorded_colours(&self) -> Vec<Colour> {
        match &self.transition {
            Some(t) if t.state == TransitionState::Pending => vec![t.from, t.to],
            _ => vec![self.active()],
        }
    }

    /// The persisted horizon.
    pub fn horizon(&self) -> Key {
        self.plan.horizon
    }

    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.plan.epoch
    }

    /// Colour owning the end of the timeline.
    pub fn active(&self) -> Colour {
        self.plan.timeline.last().owner
    }

    /// Phase of the latest transition.
    pub fn phase(&self) -> Option<Phase> {
        self.transition.as_ref().map(|t| t.phase(self.plan.horizon))
    }

    /// Checks invariants a document read from outside must hold.
    pub fn validate(&self) -> Result<(), CoreError> {
        let invalid = |reason: String| Err(CoreError::InvalidDocument { reason });
        if self.schema != SCHEMA_VERSION {
            return invalid(format!(
                "schema {} is not supported (expected {SCHEMA_VERSION})",
                self.schema
            ));
        }
        if self.segments_epoch > self.plan.epoch {
            return invalid("segments_epoch is after the epoch".into());
        }
        if let Err(e) = check_horizon_window(self.policy.window) {
            return invalid(e.to_string());
        }
        if self.policy.margin > self.policy.window {
            return invalid("horizon margin is above the window".into());
        }
        for colour in Colour::ALL {
            if self.plan.retired.of(colour) > self.plan.horizon {
                return invalid(format!("{colour}'s retirement floor is above the horizon"));
            }
        }
        Ok(())
    }

    /// Checks that `next` is a legal successor of `self` (see
    /// [`crate::fence`]): same incarnation, a later epoch, a horizon and
    /// floors that never fall, and below the installed horizon no key gains
    /// an emitter or changes it — it may only be retired.
    pub fn check_successor(&self, next: &PipelineDoc) -> Result<(), CoreError> {
        fence::check_successor(&self.plan, &next.plan)
    }

    /// A copy at the next epoch (the caller changes the rest).
    pub(crate) fn successor(&self) -> PipelineDoc {
        let mut next = self.clone();
        next.plan.epoch = self.plan.epoch.next();
        next.unknown.remove(LEGACY_COMPACTED_BELOW);
        next
    }

    /// Moves the latest transition to the history.
    pub(crate) fn archive_transition(&mut self) {
        if let Some(old) = self.transition.take() {
            self.history.push(old);
            let excess = self.history.len().saturating_sub(HISTORY_LEN);
            self.history.drain(..excess);
        }
    }
}
