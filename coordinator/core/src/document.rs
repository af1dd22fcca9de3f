//! The pipeline document: everything that is persisted about a pipeline, as
//! one value that stores write atomically with a compare-and-swap.

use serde::{Deserialize, Serialize};

use crate::domain::{Colour, Epoch, Key, PipelineName};
use crate::error::CoreError;
use crate::horizon::HorizonPolicy;
use crate::operators::GateOperators;
use crate::plan::Plan;
use crate::transition::{Phase, Transition};

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
    /// Keys below this were compacted: their segments merged into the one
    /// holding it once every gate of both colours was past it by the
    /// allowed lateness. Never above the horizon; never falls.
    #[serde(default = "minus_infinity")]
    pub compacted_below: Key,
    /// Gate operators of the colour that will have to drain (see
    /// [`crate::operators`]); a restarted coordinator waits for them.
    #[serde(default)]
    pub operators: GateOperators,
}

fn minus_infinity() -> Key {
    Key::MIN
}

impl PipelineDoc {
    /// A new pipeline, owned entirely by `owner`.
    pub fn new(name: PipelineName, owner: Colour, policy: HorizonPolicy) -> Self {
        let plan = Plan::new(owner);
        PipelineDoc {
            schema: SCHEMA_VERSION,
            name,
            segments_epoch: plan.epoch,
            plan,
            policy,
            transition: None,
            history: Vec::new(),
            compacted_below: Key::MIN,
            operators: GateOperators::default(),
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
        if self.policy.window == 0 {
            return invalid("horizon window must be positive".into());
        }
        if self.compacted_below > self.plan.horizon {
            return invalid("compacted_below is above the horizon".into());
        }
        Ok(())
    }

    /// Checks that `next` is a legal successor of `self`: the epoch grows,
    /// the horizon never falls, and no owner below the horizon changes,
    /// except below a compaction floor that rises no higher than the horizon.
    pub fn check_successor(&self, next: &PipelineDoc) -> Result<(), CoreError> {
        if next.epoch() <= self.epoch() {
            return Err(CoreError::StaleDocument {
                current: self.epoch(),
                proposed: next.epoch(),
            });
        }
        if next.horizon() < self.horizon() {
            return Err(CoreError::FenceViolation {
                key: next.horizon(),
                horizon: self.horizon(),
            });
        }
        if next.compacted_below < self.compacted_below || next.compacted_below > self.horizon() {
            return Err(CoreError::InvalidCompaction {
                floor: next.compacted_below,
                previous: self.compacted_below,
                horizon: self.horizon(),
            });
        }
        if let Some(key) = self.plan.timeline.first_difference_within(
            &next.plan.timeline,
            next.compacted_below,
            self.horizon(),
        ) {
            return Err(CoreError::FenceViolation {
                key,
                horizon: self.horizon(),
            });
        }
        Ok(())
    }

    /// A copy at the next epoch (the caller changes the rest).
    pub(crate) fn successor(&self) -> PipelineDoc {
        let mut next = self.clone();
        next.plan.epoch = self.plan.epoch.next();
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
