//! Transitions: a cutover from one colour to the other at a key, and the
//! phases it moves through.
//!
//! Stored state is what cannot be derived (`Pending`, `Drained`, ...); the
//! phase a user sees also depends on the horizon: a pending transition is
//! `Scheduled` while the horizon is at or below its key and it was not
//! promoted (abortable), and `CuttingOver` once the horizon passed it or it
//! was promoted (irrevocable: promotion is the point of no return).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::UnknownFields;
use crate::domain::{Colour, Epoch, Key, Mode};

/// Where a cutover happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutoverAt {
    /// At this key; it must not lie below the persisted horizon.
    Key(Key),
    /// At the persisted horizon: the earliest key allowed.
    Earliest,
}

/// A request to schedule a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleRequest {
    /// Colour that owns keys from the cutover on.
    pub target: Colour,
    /// Where.
    pub at: CutoverAt,
    /// Key kind gates decide on from now on.
    pub mode: Mode,
    /// Watermark distance past the cutover before the old colour is drained.
    pub allowed_lateness: u64,
    /// When false, the horizon stops at the cutover key until promoted.
    pub auto_promote: bool,
}

impl ScheduleRequest {
    /// A cutover to `target` at EARLIEST: EVENT_TIME, no lateness,
    /// auto-promoted (change the fields for anything else).
    pub fn earliest(target: Colour) -> Self {
        ScheduleRequest {
            target,
            at: CutoverAt::Earliest,
            mode: Mode::EventTime,
            allowed_lateness: 0,
            auto_promote: true,
        }
    }

    /// Like [`ScheduleRequest::earliest`], at `key`.
    pub fn at(target: Colour, key: Key) -> Self {
        ScheduleRequest {
            at: CutoverAt::Key(key),
            ..ScheduleRequest::earliest(target)
        }
    }
}

/// What is stored of a transition's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransitionState {
    /// Scheduled or cutting over (see [`Transition::phase`]).
    Pending,
    /// Every gate of the old colour is past the cutover plus lateness.
    Drained,
    /// Closed after the old job was stopped.
    Completed,
    /// Removed before the horizon reached it.
    Aborted,
    /// A rollback was scheduled before this one completed.
    Superseded,
}

/// The phase a user sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// Appended, horizon at or below the key: abortable.
    Scheduled,
    /// Horizon passed the key, or the cutover was promoted: irrevocable.
    CuttingOver,
    /// The old colour's gates are all past key + lateness.
    Drained,
    /// Closed.
    Completed,
    /// Removed before it took effect.
    Aborted,
    /// Replaced by a rollback.
    Superseded,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Scheduled => "SCHEDULED",
            Phase::CuttingOver => "CUTTING_OVER",
            Phase::Drained => "DRAINED",
            Phase::Completed => "COMPLETED",
            Phase::Aborted => "ABORTED",
            Phase::Superseded => "SUPERSEDED",
        })
    }
}

/// A cutover as stored in the pipeline document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Epoch of the document that scheduled it.
    pub id: Epoch,
    /// Owner before the cutover.
    pub from: Colour,
    /// Owner from the cutover on.
    pub to: Colour,
    /// Cutover key.
    pub at: Key,
    /// Key kind.
    pub mode: Mode,
    /// Lateness allowed before the old colour counts as drained.
    pub allowed_lateness: u64,
    /// Whether the horizon may pass the cutover without a promotion.
    pub auto_promote: bool,
    /// Whether it was promoted.
    pub promoted: bool,
    /// Stored state.
    pub state: TransitionState,
    /// Fields a newer version wrote; kept on every write.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl Transition {
    /// The phase, given the persisted horizon.
    pub fn phase(&self, horizon: Key) -> Phase {
        match self.state {
            TransitionState::Pending if horizon > self.at || self.promoted => Phase::CuttingOver,
            TransitionState::Pending => Phase::Scheduled,
            TransitionState::Drained => Phase::Drained,
            TransitionState::Completed => Phase::Completed,
            TransitionState::Aborted => Phase::Aborted,
            TransitionState::Superseded => Phase::Superseded,
        }
    }

    /// The highest horizon allowed while this transition waits for promotion.
    pub fn horizon_cap(&self) -> Option<Key> {
        let waiting =
            self.state == TransitionState::Pending && !self.auto_promote && !self.promoted;
        waiting.then_some(self.at)
    }

    /// Watermark the old colour's gates must reach to be drained.
    pub fn drain_mark(&self) -> Key {
        self.at.saturating_add(self.allowed_lateness)
    }
}
