//! State shared between gate handles and the session task: the latest plan
//! per pipeline and the progress counters of every gate.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use cutover_core::{
    Epoch, GateIdentity, GateKey, GateProgress, Incarnation, Key, PipelineName, Plan,
};
use tokio::sync::{Notify, mpsc, watch};

use crate::config::ClientConfig;

/// "No record held" in [`GateShared::lowest_held`].
pub(crate) const NONE_HELD: i64 = i64::MAX;

/// The latest plan of one pipeline in this process.
pub(crate) struct PipelineSlot {
    /// Read by every gate's `decide()` through an `arc_swap::Cache`.
    pub(crate) plan: Arc<ArcSwapOption<Plan>>,
    /// Epoch of the installed plan; waiters wake on change.
    pub(crate) installed: watch::Sender<Epoch>,
    /// Horizon before the last raise, to tell when a gate nears the current one.
    pub(crate) previous_horizon: AtomicI64,
    /// Epoch of the installed plan, for threads that block until it changes.
    pub(crate) blocking: (Mutex<Epoch>, Condvar),
}

impl PipelineSlot {
    fn new() -> Self {
        PipelineSlot {
            plan: Arc::new(ArcSwapOption::empty()),
            installed: watch::channel(Epoch(0)).0,
            previous_horizon: AtomicI64::new(i64::MIN),
            blocking: (Mutex::new(Epoch(0)), Condvar::new()),
        }
    }

    /// Installs a newer plan and wakes waiters.
    pub(crate) fn install(&self, plan: Arc<Plan>) {
        let previous = self.plan.load().as_ref().map_or(i64::MIN, |p| p.horizon.0);
        self.previous_horizon.store(previous, Ordering::Relaxed);
        let epoch = plan.epoch;
        {
            let mut blocked = lock(&self.blocking.0);
            self.plan.store(Some(plan));
            *blocked = epoch;
        }
        self.blocking.1.notify_all();
        self.installed.send_replace(epoch);
    }

    /// Whether `watermark` is past the middle of the last horizon step.
    pub(crate) fn near_horizon(&self, watermark: Key) -> bool {
        let Some(plan) = self.plan.load_full() else {
            return false;
        };
        let previous = self.previous_horizon.load(Ordering::Relaxed);
        let horizon = plan.horizon.0;
        let midpoint = if previous == i64::MIN {
            horizon
        } else {
            previous + (horizon.saturating_sub(previous)) / 2
        };
        watermark.0 >= midpoint
    }
}

/// Progress counters of one gate, written by its handle, read by the session.
pub(crate) struct GateShared {
    pub(crate) identity: GateIdentity,
    pub(crate) watermark: AtomicI64,
    pub(crate) max_key: AtomicI64,
    pub(crate) emitted: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) held: AtomicU64,
    pub(crate) lowest_held: AtomicI64,
    pub(crate) idle: AtomicBool,
    pub(crate) finished: AtomicBool,
    /// Watermark of the checkpoint a failover would restore, once
    /// `tracks_checkpoints` is set.
    pub(crate) checkpointed: AtomicI64,
    pub(crate) tracks_checkpoints: AtomicBool,
    /// Set on every change; the session reports the gate and clears it.
    pub(crate) dirty: AtomicBool,
}

impl GateShared {
    pub(crate) fn new(identity: GateIdentity) -> Self {
        GateShared {
            identity,
            watermark: AtomicI64::new(i64::MIN),
            max_key: AtomicI64::new(i64::MIN),
            emitted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            held: AtomicU64::new(0),
            lowest_held: AtomicI64::new(NONE_HELD),
            idle: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            checkpointed: AtomicI64::new(i64::MIN),
            tracks_checkpoints: AtomicBool::new(false),
            dirty: AtomicBool::new(true),
        }
    }

    /// The gate's progress. The watermark is written with release after the
    /// held records of its subtask, and read here with acquire before them:
    /// a report never shows a watermark without the records held before it.
    pub(crate) fn progress(&self) -> GateProgress {
        let watermark = Key(self.watermark.load(Ordering::Acquire));
        let lowest = self.lowest_held.load(Ordering::Relaxed);
        let held = self.held.load(Ordering::Relaxed);
        let tracks = self.tracks_checkpoints.load(Ordering::Acquire);
        GateProgress {
            watermark,
            max_key: Key(self.max_key.load(Ordering::Relaxed)),
            emitted: self.emitted.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            held,
            idle: self.idle.load(Ordering::Relaxed),
            finished: self.finished.load(Ordering::Relaxed),
            lowest_held: (lowest != NONE_HELD).then_some(Key(lowest)),
            checkpointed: tracks.then(|| Key(self.checkpointed.load(Ordering::Relaxed))),
        }
    }
}

/// What gate handles ask of the session task.
pub(crate) enum Command {
    /// Register a gate on the live session.
    Attach(Arc<GateShared>),
    /// Remove a gate from the live session.
    Detach(PipelineName, GateKey),
}

/// Everything shared by a client's handles and its session task.
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    pub(crate) pipelines: Mutex<HashMap<PipelineName, Arc<PipelineSlot>>>,
    pub(crate) gates: Mutex<BTreeMap<(PipelineName, GateKey), Arc<GateShared>>>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    /// Report progress now (a gate holds a record or nears the horizon).
    pub(crate) urgent: Notify,
    /// Some gate has progress the coordinator has not seen; set with the
    /// first change after a report, cleared by the next report.
    pub(crate) progress_pending: AtomicBool,
    /// Wakes the session when `progress_pending` is set: an idle client
    /// sends nothing and its session does not wake.
    pub(crate) progress_wanted: Notify,
    pub(crate) connected: watch::Sender<bool>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) sessions_opened: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// A gate changed its progress: have it reported (at most once per
    /// progress interval).
    pub(crate) fn want_progress(&self) {
        if !self.progress_pending.swap(true, Ordering::SeqCst) {
            self.progress_wanted.notify_one();
        }
    }

    pub(crate) fn slot(&self, pipeline: &PipelineName) -> Arc<PipelineSlot> {
        lock(&self.pipelines)
            .entry(pipeline.clone())
            .or_insert_with(|| Arc::new(PipelineSlot::new()))
            .clone()
    }

    pub(crate) fn existing_slot(&self, pipeline: &PipelineName) -> Option<Arc<PipelineSlot>> {
        lock(&self.pipelines).get(pipeline).cloned()
    }

    pub(crate) fn gates(
        &self,
    ) -> MutexGuard<'_, BTreeMap<(PipelineName, GateKey), Arc<GateShared>>> {
        lock(&self.gates)
    }

    /// Epoch and incarnation held per pipeline that has a plan.
    pub(crate) fn held_epochs(&self) -> Vec<(PipelineName, Epoch, Incarnation)> {
        lock(&self.pipelines)
            .iter()
            .filter_map(|(name, slot)| {
                slot.plan
                    .load()
                    .as_ref()
                    .map(|p| (name.clone(), p.epoch, p.incarnation))
            })
            .collect()
    }
}
