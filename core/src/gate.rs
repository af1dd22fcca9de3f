//! Gate identities and the progress gates report.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{Colour, Key, PipelineName};
use crate::error::CoreError;
use crate::limits::MAX_PARALLELISM;

/// Longest gate uid or job id accepted.
pub const MAX_ID_LEN: usize = 256;

/// Identity of a gate: one subtask of one gate operator in one job.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GateIdentity {
    /// Pipeline the gate belongs to.
    pub pipeline: PipelineName,
    /// Colour of its job.
    pub colour: Colour,
    /// Job or run id (free text). With `attempt`, tells a reconnecting
    /// gate from a restarted task (see [`GateIdentity::same_run`]).
    pub job_id: String,
    /// Operator uid.
    pub gate_uid: String,
    /// Subtask index, below `parallelism`.
    pub subtask_index: u32,
    /// Operator parallelism in this job.
    pub parallelism: u32,
    /// Attempt number; a higher attempt replaces a lower one.
    pub attempt: u32,
}

impl GateIdentity {
    /// The key of this gate within its pipeline.
    pub fn key(&self) -> GateKey {
        GateKey {
            colour: self.colour,
            gate_uid: self.gate_uid.clone(),
            subtask_index: self.subtask_index,
        }
    }

    /// Whether `other` is the same run of the task as `self` (same job id
    /// and attempt): a gate reconnecting. Anything else is a restarted task,
    /// resumed from a checkpoint or savepoint behind where it was.
    pub fn same_run(&self, other: &GateIdentity) -> bool {
        self.job_id == other.job_id && self.attempt == other.attempt
    }

    /// Checks the fields the pipeline name's type does not.
    pub fn validate(&self) -> Result<(), CoreError> {
        let reason = if self.gate_uid.is_empty() {
            Some("gate uid must not be empty".to_string())
        } else if self.gate_uid.len() > MAX_ID_LEN || self.job_id.len() > MAX_ID_LEN {
            Some(format!(
                "gate uid and job id must be at most {MAX_ID_LEN} bytes"
            ))
        } else if self.parallelism == 0 || self.parallelism > MAX_PARALLELISM {
            Some(format!(
                "parallelism must be between 1 and {MAX_PARALLELISM} (Flink's limit), not {}",
                self.parallelism
            ))
        } else if self.subtask_index >= self.parallelism {
            Some(format!(
                "subtask index {} must be below parallelism {}",
                self.subtask_index, self.parallelism
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoreError::InvalidGate {
                gate: self.key().to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// A gate within its pipeline: colour, operator uid and subtask index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GateKey {
    /// Colour of its job.
    pub colour: Colour,
    /// Operator uid.
    pub gate_uid: String,
    /// Subtask index.
    pub subtask_index: u32,
}

impl fmt::Display for GateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uid: String = self.gate_uid.chars().take(80).collect();
        write!(f, "{}/{}[{}]", self.colour, uid, self.subtask_index)
    }
}

/// A client session, numbered by the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

/// What a gate reports of its progress (counters are totals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateProgress {
    /// Current watermark.
    pub watermark: Key,
    /// Highest key seen.
    pub max_key: Key,
    /// Records emitted.
    pub emitted: u64,
    /// Records dropped.
    pub dropped: u64,
    /// Records held now.
    pub held: u64,
    /// The input is idle.
    pub idle: bool,
    /// The input ended.
    pub finished: bool,
    /// Lowest key held now, if any.
    pub lowest_held: Option<Key>,
    /// The watermark the gate had when the checkpoint its job would restore
    /// from was taken (the last completed one, or the one the task was
    /// restored from), if the gate can know it; `None` for a gate that cannot
    /// (it is then never counted as durably past anything). Every record the
    /// job can replay after a failover has a key at or above it, minus the
    /// allowed lateness.
    pub checkpointed: Option<Key>,
}

impl GateProgress {
    /// Whether the gate reported the end of its input (a finished flag, or
    /// Flink's end-of-input watermark `Key::MAX`).
    pub fn is_finished(&self) -> bool {
        self.finished || self.watermark == Key::MAX
    }

    /// The watermark the horizon policy follows: `None` for a gate that is
    /// idle, finished, or has none yet.
    pub fn active_watermark(&self) -> Option<Key> {
        (!self.idle && !self.is_finished() && self.watermark > Key::MIN).then_some(self.watermark)
    }

    /// The last real watermark of a finished gate (never the end of input).
    pub fn finished_watermark(&self) -> Option<Key> {
        (self.is_finished() && self.watermark > Key::MIN && self.watermark < Key::MAX)
            .then_some(self.watermark)
    }
}

impl Default for GateProgress {
    fn default() -> Self {
        GateProgress {
            watermark: Key::MIN,
            max_key: Key::MIN,
            emitted: 0,
            dropped: 0,
            held: 0,
            idle: false,
            finished: false,
            lowest_held: None,
            checkpointed: None,
        }
    }
}
