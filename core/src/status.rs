//! The status of a pipeline as controllers and operators see it.

use crate::domain::{Colour, Key, PipelineName};
use crate::plan::Plan;
use crate::transition::{Phase, Transition};

/// Per-colour counts derived from the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColourGates {
    /// Gates announced by parallelism, summed over gate uids.
    pub expected: u32,
    /// Gates on a live session.
    pub connected: u32,
    /// Connected gates whose session acknowledged `epoch`.
    pub acked: u32,
    /// Lowest watermark among connected gates.
    pub lowest_watermark: Key,
    /// Highest watermark among all gates.
    pub highest_watermark: Key,
    /// Lowest checkpointed watermark among connected gates that report
    /// their checkpoints (how far the colour is past keys a failover could
    /// replay); `None` if no connected gate reports them.
    pub lowest_checkpointed: Option<Key>,
    /// Records emitted (totals reported).
    pub emitted: u64,
    /// Records dropped.
    pub dropped: u64,
    /// Records held now.
    pub held: u64,
}

impl Default for ColourGates {
    /// No gate: counts 0, watermarks minus infinity.
    fn default() -> Self {
        ColourGates {
            expected: 0,
            connected: 0,
            acked: 0,
            lowest_watermark: Key::MIN,
            highest_watermark: Key::MIN,
            lowest_checkpointed: None,
            emitted: 0,
            dropped: 0,
            held: 0,
        }
    }
}

/// What one coordinator serves of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serving {
    /// The coordinator's id (empty until the edge names the answering one).
    pub coordinator: String,
    /// Whether this is the coordinator holding this status.
    pub answering: bool,
    /// Connected BLUE gates it serves.
    pub blue: u32,
    /// Connected GREEN gates it serves.
    pub green: u32,
    /// Whether its report counts (the edge knows; true for itself).
    pub live: bool,
    /// Milliseconds since its renewal was last seen changing (the edge
    /// knows; `Some(0)` for itself).
    pub renewed_ms_ago: Option<u64>,
}

/// Plan, transition and gates of one pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineStatus {
    /// The pipeline.
    pub name: PipelineName,
    /// Its plan.
    pub plan: Plan,
    /// Latest transition.
    pub transition: Option<Transition>,
    /// Its phase.
    pub phase: Option<Phase>,
    /// Colour owning the end of the timeline.
    pub active: Colour,
    /// Blue gates.
    pub blue: ColourGates,
    /// Green gates.
    pub green: ColourGates,
    /// The coordinators serving its gates: this one first, then those
    /// whose reports it holds.
    pub serving: Vec<Serving>,
}

impl PipelineStatus {
    /// Gates of `colour`.
    pub fn gates(&self, colour: Colour) -> &ColourGates {
        match colour {
            Colour::Blue => &self.blue,
            Colour::Green => &self.green,
        }
    }

    /// Whether every expected gate of both colours is connected and acked the
    /// current epoch (and at least one gate exists).
    pub fn all_acked(&self) -> bool {
        let expected = self.blue.expected + self.green.expected;
        expected > 0 && self.blue.acked + self.green.acked == expected
    }
}
