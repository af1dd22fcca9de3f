//! Several coordinators serving one pipeline: what each publishes of the
//! gates it serves ([`ServingReport`]), how a coordinator folds the live
//! reports of the others into one view of the whole fleet's gates
//! ([`fleet_view`]), when a coordinator's own report is worth rewriting
//! ([`ReportDigest`]), and which reports are live ([`Liveness`]).
//!
//! The rules, in a few sentences. Each coordinator serves the gates whose
//! clients are connected to it and publishes, per pipeline, one report of
//! them (never one record per gate); it rewrites it only when what the
//! others decide on changes: which gates it serves (job, attempt,
//! connected, finished, idle), whether they all drained, or its slowest
//! watermark crossing a half-window mark. A coordinator's view of the
//! fleet is its own ledger with every live report folded in: a gate listed
//! by several counts once — by its newest attempt within a job, else by the
//! one that is connected, and on a tie by the folding coordinator's own
//! entry — so a stale report never outweighs a newer run of the same task.
//! A report counts only while its coordinator is *live*: its renewal
//! counter was seen to change within the time-to-live, measured by the
//! reader's own monotonic clock (no clocks are compared across machines).
//! A report of another incarnation of the pipeline is ignored. Everything
//! the single coordinator decided from its ledger — DRAINED, the horizon,
//! retirement, the status counts — it now decides from this view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::document::UnknownFields;
use crate::domain::{Colour, Epoch, Incarnation, Key, PipelineName};
use crate::error::CoreError;
use crate::gate::{GateIdentity, GateKey, GateProgress, SessionId};
use crate::ledger::Ledger;

/// Longest coordinator id accepted.
pub const MAX_COORDINATOR_ID_LEN: usize = 128;

/// A coordinator process, unique across the fleet (its host name and a
/// random suffix chosen at start, or given).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CoordinatorId(String);

impl CoordinatorId {
    /// `id` if it is 1 to 128 characters of `[A-Za-z0-9._-]` (usable as a
    /// file name, an etcd key segment and a Kubernetes label value).
    pub fn new(id: impl Into<String>) -> Result<Self, CoreError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= MAX_COORDINATOR_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !id.starts_with('.');
        if valid {
            Ok(CoordinatorId(id))
        } else {
            Err(CoreError::InvalidCoordinatorId {
                id: id.chars().take(80).collect(),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CoordinatorId {
    type Error = CoreError;
    fn try_from(id: String) -> Result<Self, CoreError> {
        CoordinatorId::new(id)
    }
}

impl From<CoordinatorId> for String {
    fn from(id: CoordinatorId) -> String {
        id.0
    }
}

impl std::fmt::Display for CoordinatorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One gate as the coordinator serving it last reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedGate {
    /// Colour of its job.
    pub colour: Colour,
    /// Operator uid.
    pub gate_uid: String,
    /// Subtask index.
    pub subtask_index: u32,
    /// Operator parallelism.
    pub parallelism: u32,
    /// Job id.
    pub job_id: String,
    /// Attempt number.
    pub attempt: u32,
    /// Whether its session was open when the report was written.
    pub connected: bool,
    /// Epoch its session acknowledged.
    pub acked: Epoch,
    /// Its progress when the report was written.
    pub progress: GateProgress,
}

impl ReportedGate {
    /// The gate's key.
    pub fn key(&self) -> GateKey {
        GateKey {
            colour: self.colour,
            gate_uid: self.gate_uid.clone(),
            subtask_index: self.subtask_index,
        }
    }

    fn identity(&self, pipeline: &PipelineName) -> GateIdentity {
        GateIdentity {
            pipeline: pipeline.clone(),
            colour: self.colour,
            job_id: self.job_id.clone(),
            gate_uid: self.gate_uid.clone(),
            subtask_index: self.subtask_index,
            parallelism: self.parallelism,
            attempt: self.attempt,
        }
    }
}

/// What one coordinator serves of one pipeline, as published in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingReport {
    /// Who serves.
    pub coordinator: CoordinatorId,
    /// The pipeline.
    pub pipeline: PipelineName,
    /// The pipeline's incarnation the gates were served under.
    pub incarnation: Incarnation,
    /// Grows by one with every write of this coordinator's report.
    pub sequence: u64,
    /// The gates it serves or served since it started (disconnected ones
    /// are kept: a gate's last checkpoint stays true after it left).
    pub gates: Vec<ReportedGate>,
    /// Fields a newer version wrote.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl Ledger {
    /// Every gate of this ledger as a report lists it.
    pub fn reported_gates(&self) -> Vec<ReportedGate> {
        self.gates
            .values()
            .map(|g| ReportedGate {
                colour: g.identity.colour,
                gate_uid: g.identity.gate_uid.clone(),
                subtask_index: g.identity.subtask_index,
                parallelism: g.identity.parallelism,
                job_id: g.identity.job_id.clone(),
                attempt: g.identity.attempt,
                connected: g.session.is_some(),
                acked: g.session.map_or(Epoch(0), |s| self.session_acked(s)),
                progress: g.progress,
            })
            .collect()
    }
}

/// Sessions standing for other coordinators in a fleet view: numbered down
/// from the top of the range, never used by a real session.
fn remote_session(report: usize, acked: Epoch) -> SessionId {
    // One session per (report, acked epoch): at most a few per report.
    let report = u64::try_from(report).unwrap_or(u64::MAX >> 24);
    SessionId(u64::MAX - (report << 24) - (acked.0 & 0xff_ffff))
}

/// Whether a session id stands for another coordinator in a fleet view.
pub fn is_remote_session(session: SessionId) -> bool {
    session.0 > u64::MAX - (1 << 56)
}

/// A gate's claim, for picking one per key.
#[derive(Clone, Copy)]
struct Claim<'a> {
    job_id: &'a str,
    attempt: u32,
    connected: bool,
    watermark: Key,
}

/// Whether `challenger` replaces `holder` for the same gate key: a newer
/// attempt of the same job; else the connected one; a tie keeps the holder,
/// except that within one run the further watermark (the later report) wins.
fn replaces(challenger: Claim<'_>, holder: Claim<'_>) -> bool {
    if challenger.job_id == holder.job_id {
        if challenger.attempt != holder.attempt {
            return challenger.attempt > holder.attempt;
        }
        if challenger.connected != holder.connected {
            return challenger.connected;
        }
        return challenger.watermark > holder.watermark;
    }
    challenger.connected && !holder.connected
}

/// `own` with the gates of `reports` folded in (see the module doc). The
/// caller passes only live reports of the pipeline's current incarnation,
/// not its own.
pub fn fleet_view(own: &Ledger, pipeline: &PipelineName, reports: &[&ServingReport]) -> Ledger {
    let mut view = own.clone();
    // The winning remote claim per key.
    let mut best: BTreeMap<GateKey, (usize, &ReportedGate)> = BTreeMap::new();
    for (index, report) in reports.iter().enumerate() {
        for gate in &report.gates {
            let key = gate.key();
            let challenger = claim_of(gate);
            let replace = match best.get(&key) {
                None => true,
                Some((_, held)) => replaces(challenger, claim_of(held)),
            };
            if replace {
                best.insert(key, (index, gate));
            }
        }
    }
    for (key, (index, gate)) in best {
        let wins = match own.gate(&key) {
            None => true,
            Some(entry) => replaces(
                claim_of(gate),
                Claim {
                    job_id: &entry.identity.job_id,
                    attempt: entry.identity.attempt,
                    connected: entry.session.is_some(),
                    watermark: entry.progress.watermark,
                },
            ),
        };
        if !wins {
            continue;
        }
        let session = remote_session(index, gate.acked);
        // A claim the ledger refuses (it would replace a live gate with an
        // older attempt) was not a winner after all.
        if view
            .attach(session, &[gate.identity(pipeline)], gate.acked)
            .is_err()
        {
            continue;
        }
        // The report's progress as it stands (a restarted task's progress
        // was started over by the attach).
        let _ = view.progress(session, &key, gate.progress);
        if !gate.connected {
            let _ = view.detach(session, &[key]);
        }
    }
    view
}

fn claim_of(gate: &ReportedGate) -> Claim<'_> {
    Claim {
        job_id: &gate.job_id,
        attempt: gate.attempt,
        connected: gate.connected,
        watermark: gate.progress.watermark,
    }
}

/// Which coordinators are live, judged by the reader's own monotonic
/// clock: a coordinator is live while its renewal counter was seen to
/// change within `ttl` milliseconds. One seen only once is not live yet (a
/// record left by a crashed coordinator looks the same as a fresh one).
#[derive(Clone, Debug)]
pub struct Liveness {
    ttl: u64,
    seen: BTreeMap<CoordinatorId, Renewal>,
}

#[derive(Clone, Copy, Debug)]
struct Renewal {
    counter: u64,
    /// When the counter was last seen to change (reader's clock, ms).
    changed_at: Option<u64>,
}

impl Liveness {
    /// A tracker with a time-to-live of `ttl` milliseconds.
    pub fn new(ttl: u64) -> Self {
        Liveness {
            ttl,
            seen: BTreeMap::new(),
        }
    }

    /// `coordinator`'s renewal counter read at `now` (reader's clock, ms).
    pub fn observe(&mut self, coordinator: &CoordinatorId, counter: u64, now: u64) {
        match self.seen.get_mut(coordinator) {
            Some(renewal) if renewal.counter != counter => {
                renewal.counter = counter;
                renewal.changed_at = Some(now);
            }
            Some(_) => {}
            None => {
                self.seen.insert(
                    coordinator.clone(),
                    Renewal {
                        counter,
                        changed_at: None,
                    },
                );
            }
        }
    }

    /// The coordinator's record is gone (it stopped cleanly, or its lease
    /// expired).
    pub fn forget(&mut self, coordinator: &CoordinatorId) {
        self.seen.remove(coordinator);
    }

    /// Whether `coordinator` is live at `now`.
    pub fn is_live(&self, coordinator: &CoordinatorId, now: u64) -> bool {
        self.seen
            .get(coordinator)
            .and_then(|r| r.changed_at)
            .is_some_and(|at| now.saturating_sub(at) <= self.ttl)
    }

    /// How long ago `coordinator`'s counter last changed, if it was seen to.
    pub fn age(&self, coordinator: &CoordinatorId, now: u64) -> Option<u64> {
        self.seen
            .get(coordinator)
            .and_then(|r| r.changed_at)
            .map(|at| now.saturating_sub(at))
    }

    /// Every coordinator seen, with whether it is live at `now`.
    pub fn known(&self, now: u64) -> impl Iterator<Item = (&CoordinatorId, bool)> {
        self.seen.keys().map(move |id| (id, self.is_live(id, now)))
    }
}

/// What the other coordinators decide on in a coordinator's own report;
/// the report is rewritten only when this changes (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportDigest {
    /// Per gate: job, attempt, connected, finished, idle.
    coverage: Vec<(GateKey, String, u32, bool, bool, bool)>,
    /// Whether every gate of the draining colour served here drained.
    drained: bool,
    /// Per colour: the slowest active watermark, the lowest checkpoint and
    /// the lowest held key of the gates served here, in half-window steps.
    marks: [[Option<i64>; 3]; 2],
}

impl ReportDigest {
    /// The digest of `ledger` for a pipeline with horizon window `window`,
    /// where `drained` tells whether all its gates of the draining colour
    /// drained.
    pub fn of(ledger: &Ledger, window: u64, drained: bool) -> ReportDigest {
        let step = i64::try_from((window / 2).max(1)).unwrap_or(i64::MAX);
        let coverage = ledger
            .gates()
            .map(|g| {
                (
                    g.identity.key(),
                    g.identity.job_id.clone(),
                    g.identity.attempt,
                    g.session.is_some(),
                    g.progress.is_finished(),
                    g.progress.idle,
                )
            })
            .collect();
        let marks = Colour::ALL.map(|colour| {
            let connected = ledger
                .gates()
                .filter(|g| g.identity.colour == colour && g.session.is_some());
            let mut lowest = [None::<i64>; 3];
            for gate in connected {
                let p = &gate.progress;
                for (slot, value) in [p.active_watermark(), p.checkpointed, p.lowest_held]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(v) = value {
                        lowest[slot] = Some(lowest[slot].map_or(v.0, |l| l.min(v.0)));
                    }
                }
            }
            lowest.map(|l| l.map(|v| v.div_euclid(step)))
        });
        ReportDigest {
            coverage,
            drained,
            marks,
        }
    }
}
