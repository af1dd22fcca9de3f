//! A gate handle: one per subtask. `decide()` reads the pipeline's latest
//! plan through an `arc_swap::Cache` — no lock, no allocation, no await —
//! and counts into plain fields that [`Gate::observe_watermark`] and
//! [`Gate::flush`] publish for the session task.
//!
//! Per record, the gate only compares the key with a copy of the plan's
//! tail ([`Tail`]: horizon and the last two segments) taken when the plan
//! pointer changes; keys older than that tail ask the plan itself.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwapOption, Cache};
use cutover_core::{Colour, Decision, GateIdentity, Key, Mode, Plan};

use crate::published::PublishedGate;
use crate::shared::Shared;
use crate::slot::PipelineSlot;
use crate::tail::Tail;
use crate::wake::Signal;

/// Decides, record by record, whether this gate's job emits.
pub struct Gate {
    colour: Colour,
    tail: Tail,
    cache: Cache<Arc<ArcSwapOption<Plan>>, Option<Arc<Plan>>>,
    slot: Arc<PipelineSlot>,
    gate: Arc<PublishedGate>,
    client: Arc<Shared>,
    emitted: u64,
    dropped: u64,
    max_key: i64,
    lowest_held: i64,
}

impl Gate {
    pub(crate) fn new(
        client: Arc<Shared>,
        slot: Arc<PipelineSlot>,
        gate: Arc<PublishedGate>,
    ) -> Self {
        Gate {
            colour: gate.identity().colour,
            tail: Tail::NONE,
            cache: Cache::new(slot.plan.clone()),
            slot,
            gate,
            client,
            emitted: 0,
            dropped: 0,
            max_key: i64::MIN,
            lowest_held: i64::MAX,
        }
    }

    /// The gate's identity.
    pub fn identity(&self) -> &GateIdentity {
        self.gate.identity()
    }

    /// What to do with a record at `key`. `Hold` before the first plan and
    /// for keys at or above the horizon: keep the record and ask again once
    /// [`Gate::wait_until_decidable`] returns (or simply later).
    #[inline]
    pub fn decide(&mut self, key: Key) -> Decision {
        let plan = self.cache.load();
        let current = plan.as_ref().map_or(0, |p| Arc::as_ptr(p) as usize);
        if current != self.tail.plan {
            self.tail = Tail::of(plan.as_ref(), self.colour);
        }
        let decision = match self.tail.decide(key) {
            Some(decision) => decision,
            // Older than the last two segments: ask the plan (there is one,
            // or the tail would have held the key).
            None => plan
                .as_ref()
                .map_or(Decision::Hold, |plan| plan.decide(self.colour, key)),
        };
        if key.0 > self.max_key {
            self.max_key = key.0;
        }
        match decision {
            Decision::Emit => self.emitted += 1,
            Decision::Drop => self.dropped += 1,
            Decision::Hold if key.0 < self.lowest_held => self.note_hold(key),
            Decision::Hold => {}
        }
        decision
    }

    /// Like [`Gate::decide`] for a record whose key depends on the plan's
    /// mode: its `timestamp` in EVENT_TIME mode, the subtask's `watermark`
    /// in WATERMARK mode (for callers holding both, such as a Flink
    /// operator). `None` in EVENT_TIME mode for a record without a
    /// timestamp.
    #[inline]
    pub fn decide_record(&mut self, timestamp: Option<Key>, watermark: Key) -> Option<Decision> {
        let mode = self
            .cache
            .load()
            .as_ref()
            .map_or(Mode::EventTime, |p| p.mode);
        let key = match mode {
            Mode::EventTime => timestamp?,
            Mode::Watermark => watermark,
        };
        Some(self.decide(key))
    }

    #[cold]
    fn note_hold(&mut self, key: Key) {
        self.lowest_held = key.0;
        self.gate.note_held(key);
        self.flush();
        self.client.raise(Signal::Urgent);
    }

    /// The decision for `key` without counting it (for callers that decide
    /// again later, e.g. to release held records).
    pub fn peek(&self, key: Key) -> Decision {
        match self.slot.plan.load().as_ref() {
            Some(plan) => plan.decide(self.colour, key),
            None => Decision::Hold,
        }
    }

    /// Waits until `key` is decidable and returns the decision (not counted:
    /// call [`Gate::decide`] for the record once this returns). While it
    /// waits the gate counts as holding a record at `key` (the coordinator
    /// then raises the horizon for it, and never counts this gate's colour
    /// as drained past it): report what is still held with
    /// [`Gate::set_held`] once the record is decided.
    pub async fn wait_until_decidable(&self, key: Key) -> Decision {
        let mut installed = self.slot.installed.subscribe();
        loop {
            installed.borrow_and_update();
            let decision = self.peek(key);
            if decision != Decision::Hold {
                return decision;
            }
            self.gate.note_held(key);
            self.client.raise(Signal::Urgent);
            if installed.changed().await.is_err() {
                return Decision::Hold;
            }
        }
    }

    /// Blocks the calling thread until `key` is decidable or `timeout`
    /// passes (then `Hold`). For callers that cannot buffer; never call it on
    /// an async runtime's thread. Counts as holding `key` while it waits,
    /// as [`Gate::wait_until_decidable`] does.
    pub fn wait_until_decidable_blocking(&self, key: Key, timeout: Duration) -> Decision {
        let deadline = std::time::Instant::now() + timeout;
        let (lock, installed) = &self.slot.blocking;
        let mut epoch = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let decision = self.peek(key);
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            if decision != Decision::Hold || remaining.is_zero() {
                return decision;
            }
            self.gate.note_held(key);
            self.client.raise(Signal::Urgent);
            let seen = *epoch;
            // Installs take the lock before notifying, so a plan installed
            // after `peek` above is not missed.
            epoch = installed
                .wait_timeout_while(epoch, remaining, |e| *e == seen)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The key kind this pipeline decides on (EVENT_TIME until a plan
    /// arrives).
    pub fn mode(&self) -> Mode {
        self.slot
            .plan
            .load()
            .as_ref()
            .map_or(Mode::EventTime, |p| p.mode)
    }

    /// The plan this gate decides with, if one arrived.
    pub fn plan(&self) -> Option<Arc<Plan>> {
        self.slot.plan.load_full()
    }

    /// Publishes the counters and the subtask's watermark; reports at once
    /// if the watermark nears the horizon. `Key::MAX` (Flink's end-of-input
    /// watermark) marks the input finished instead: it must not drive the
    /// horizon to infinity.
    pub fn observe_watermark(&mut self, watermark: Key) {
        if watermark == Key::MAX {
            self.finish();
            return;
        }
        let previous = self.gate.raise_watermark(watermark);
        self.flush();
        if watermark > previous && self.slot.near_horizon(watermark) {
            self.client.raise(Signal::Urgent);
        }
    }

    /// How many records the caller holds now and the lowest key among them.
    pub fn set_held(&mut self, count: u64, lowest: Option<Key>) {
        self.lowest_held = lowest.map_or(i64::MAX, |k| k.0);
        self.gate.set_held(count, lowest);
        self.flush();
    }

    /// Declares that this gate reports its job's checkpoints: `restored` is
    /// the lowest key it could decide again from the checkpoint or savepoint
    /// its task was restored from (see [`Gate::checkpoint_completed`];
    /// `Key::MIN` for a fresh start). From then on the coordinator
    /// counts the gate as durably past a key only through
    /// [`Gate::checkpoint_completed`]: DRAINED waits until a checkpoint past
    /// the drain mark completed, and keys of the running colour are retired
    /// only below its checkpoints. A gate that never calls this is taken at
    /// its watermark (see the README's guarantees for what that leaves
    /// open).
    pub fn track_checkpoints(&mut self, restored: Key) {
        self.gate.checkpointed(restored);
        self.flush();
    }

    /// A checkpoint of the job completed; `watermark` is the lowest key this
    /// gate could decide again after restoring it: its watermark when that
    /// checkpoint was taken, or the lowest key among the records it held and
    /// stored in that checkpoint if lower (a failover restarts the task
    /// there and decides those records again). Also declares checkpoint
    /// tracking
    /// ([`Gate::track_checkpoints`]).
    pub fn checkpoint_completed(&mut self, watermark: Key) {
        self.gate.checkpointed(watermark);
        self.flush();
    }

    /// Marks the subtask's input idle (or active again).
    pub fn set_idle(&mut self, idle: bool) {
        self.gate.set_idle(idle);
        self.flush();
    }

    /// Marks the subtask's input finished.
    pub fn finish(&mut self) {
        self.gate.set_finished();
        self.flush();
        self.client.raise(Signal::Urgent);
    }

    /// Publishes the local counters for the next progress report.
    pub fn flush(&mut self) {
        self.gate
            .publish_counts(self.emitted, self.dropped, self.max_key);
        self.client.raise(Signal::Changed);
    }

    /// Installs `plan` for this gate's pipeline as if the coordinator had
    /// sent it (the tail is published with it). For tests of readers of
    /// the tail; a gate serving a job gets its plans from its session.
    #[doc(hidden)]
    pub fn install_for_test(&self, plan: Arc<Plan>) {
        self.slot.install(plan);
    }

    /// Counts records decided outside [`Gate::decide`] from the
    /// [`Gate::published_tail`] (by a caller that decides in its own
    /// language): `emitted` and `dropped` more, the highest key among them.
    /// Published with the next [`Gate::flush`].
    pub fn add_counts(&mut self, emitted: u64, dropped: u64, max_key: Key) {
        self.emitted = self.emitted.saturating_add(emitted);
        self.dropped = self.dropped.saturating_add(dropped);
        self.max_key = self.max_key.max(max_key.0);
    }

    /// Records emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The tail of the plan this gate's pipeline holds, published on every
    /// install for readers that make no call (the JVM gate): see
    /// [`crate::tail::TailCell`]. It lives as long as the gate.
    pub fn published_tail(&self) -> &crate::tail::TailCell {
        &self.slot.tail
    }

    /// Whether this gate's client ever connected, since when it is in its
    /// present state and why attempts failed (for logs and errors).
    pub fn connection_report(&self) -> crate::ConnectionReport {
        self.client.connection_report()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.flush();
        let identity = self.gate.identity();
        self.client
            .remove_gate((identity.pipeline.clone(), identity.key()));
    }
}
