//! The simulated Flink jobs: gate subtasks reading their partition of the
//! stream, checkpoints that complete later, a transactional sink (output
//! committed with the next completed checkpoint), failover to the last
//! completed checkpoint, stop with savepoint, and a new job started from a
//! savepoint of another at its source offset.

use std::collections::BTreeMap;

use cutover_core::{Colour, GateIdentity, GateProgress, Key, PipelineName};

/// A record held by a gate (undecidable yet).
#[derive(Clone, Copy, Debug)]
pub struct Held {
    /// The key it is decided on.
    pub key: Key,
    /// The record.
    pub id: u32,
}

/// One gate's part of a checkpoint.
#[derive(Clone, Debug)]
pub struct GateSnap {
    /// Records of its partition read so far.
    pub position: usize,
    /// Records it held.
    pub held: Vec<Held>,
    /// Its watermark.
    pub watermark: Key,
}

/// A checkpoint (or the savepoint a job started from, or a final savepoint).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The job's attempt when it was taken.
    pub attempt: u32,
    /// Per gate of the job, in the job's order.
    pub gates: Vec<GateSnap>,
}

impl GateSnap {
    /// The lowest key the subtask can decide again once restored from
    /// this snapshot: its watermark then, or a record it held below it.
    pub fn replay_floor(&self) -> Key {
        self.held
            .iter()
            .map(|h| h.key)
            .fold(self.watermark, Key::min)
    }
}

impl Snapshot {
    /// The checkpointed watermark a gate restored from it reports: the
    /// lowest replay floor of every subtask's (union state, as the JVM gate
    /// restores it).
    pub fn union_watermark(&self) -> Key {
        self.gates
            .iter()
            .map(GateSnap::replay_floor)
            .min()
            .unwrap_or(Key::MIN)
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Processing (or done reading and waiting for held records).
    Running,
    /// Every gate read its input, decided everything, and the final
    /// checkpoint committed it.
    Finished,
    /// Stopped with a savepoint (output committed).
    Stopped,
    /// Cancelled without a savepoint (uncommitted output lost).
    Cancelled,
}

/// One job of one colour.
#[derive(Debug)]
pub struct Job {
    /// Its colour.
    pub colour: Colour,
    /// Current attempt (grows with every failover).
    pub attempt: u32,
    /// Its gates (indices into the world's gates).
    pub gates: Vec<usize>,
    /// Its client processes (indices into the world's processes).
    pub processes: Vec<usize>,
    /// Whether its gates report completed checkpoints.
    pub tracks: bool,
    /// Where it is.
    pub state: JobState,
    /// Snapshots by checkpoint id; `[0]` is the point it started from.
    pub snapshots: Vec<Snapshot>,
    /// The last completed checkpoint (a failover restores it).
    pub completed: usize,
    /// The transition it was started for, if any (cancelled on its abort).
    pub started_for: Option<u64>,
}

impl Job {
    /// Whether it still processes.
    pub fn running(&self) -> bool {
        self.state == JobState::Running
    }
}

/// One gate subtask.
#[derive(Debug)]
pub struct SimGate {
    /// Its identity (attempt follows the job's).
    pub identity: GateIdentity,
    /// Its job.
    pub job: usize,
    /// Its client process.
    pub process: usize,
    /// Its partition of the stream from the job's source offset: (id, ts).
    pub records: Vec<(u32, i64)>,
    /// Records read.
    pub position: usize,
    /// Records held.
    pub held: Vec<Held>,
    /// Highest timestamp read (the watermark generator's state).
    pub max_ts: i64,
    /// Current watermark.
    pub watermark: Key,
    /// Emitted since the last checkpoint.
    pub open: Vec<u32>,
    /// Emitted before checkpoint `k` and not committed yet.
    pub sealed: BTreeMap<usize, Vec<u32>>,
    /// The checkpointed watermark it reports, if its job tracks them.
    pub checkpointed: Option<Key>,
}

impl SimGate {
    /// Whether it read all of its input.
    pub fn read_all(&self) -> bool {
        self.position == self.records.len()
    }

    /// Whether it read all of its input and decided everything.
    pub fn done(&self) -> bool {
        self.read_all() && self.held.is_empty()
    }

    /// What it reports to the coordinator.
    pub fn progress(&self) -> GateProgress {
        GateProgress {
            watermark: self.watermark,
            max_key: Key(self.max_ts),
            emitted: 0,
            dropped: 0,
            held: self.held.len() as u64,
            idle: false,
            finished: self.read_all(),
            lowest_held: self.held.iter().map(|h| h.key).min(),
            checkpointed: self.checkpointed,
        }
    }

    /// Its part of a checkpoint taken now as checkpoint `k`: what it
    /// emitted so far goes into transaction `k`.
    pub fn snapshot(&mut self, k: usize) -> GateSnap {
        let open = std::mem::take(&mut self.open);
        self.sealed.entry(k).or_default().extend(open);
        self.state()
    }

    /// Its state now, without sealing anything (an intermediate savepoint).
    pub fn state(&self) -> GateSnap {
        GateSnap {
            position: self.position,
            held: self.held.clone(),
            watermark: self.watermark,
        }
    }

    /// Commits the transactions of checkpoints up to `k`; returns the
    /// records committed.
    pub fn commit(&mut self, k: usize) -> Vec<u32> {
        let later = self.sealed.split_off(&(k + 1));
        let committed = std::mem::replace(&mut self.sealed, later);
        committed.into_values().flatten().collect()
    }

    /// Restarts from `snap` as attempt `attempt`: uncommitted output is
    /// lost, the watermark generator starts over.
    pub fn restore(&mut self, snap: &GateSnap, attempt: u32, checkpointed: Option<Key>) {
        self.position = snap.position;
        self.held = snap.held.clone();
        self.watermark = Key::MIN;
        self.max_ts = i64::MIN;
        self.open.clear();
        self.sealed.clear();
        self.identity.attempt = attempt;
        self.checkpointed = checkpointed;
    }
}

/// How a new job reads the stream: its colour, parallelism, gate operators
/// and partitioning.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Subtasks.
    pub parallelism: u32,
    /// Gate operators the subtasks are split over (1 or 2).
    pub operators: u32,
    /// Partitioning salt.
    pub salt: u64,
}

impl Shape {
    /// The subtask a record goes to.
    pub fn subtask_of(&self, id: u32) -> u32 {
        ((u64::from(id).wrapping_mul(self.salt | 1) >> 7) % u64::from(self.parallelism)) as u32
    }

    /// The identity of subtask `index` of job `job_id`.
    pub fn identity(
        &self,
        pipeline: &PipelineName,
        colour: Colour,
        job_id: &str,
        index: u32,
    ) -> GateIdentity {
        GateIdentity {
            pipeline: pipeline.clone(),
            colour,
            job_id: job_id.to_string(),
            gate_uid: format!("sink-{}", index % self.operators),
            subtask_index: index / self.operators,
            parallelism: (self.parallelism - index % self.operators).div_ceil(self.operators),
            attempt: 0,
        }
    }
}
