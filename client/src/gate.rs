//! A gate handle: one per subtask. `decide()` reads the pipeline's latest
//! plan through an `arc_swap::Cache` — no lock, no allocation, no await —
//! and counts into plain fields that [`Gate::observe_watermark`] and
//! [`Gate::flush`] publish for the session task.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::{ArcSwapOption, Cache};
use cutover_core::{Colour, Decision, GateIdentity, Key, Mode, Plan};

use crate::shared::{Command, GateShared, PipelineSlot, Shared};

/// Decides, record by record, whether this gate's job emits.
pub struct Gate {
    colour: Colour,
    cache: Cache<Arc<ArcSwapOption<Plan>>, Option<Arc<Plan>>>,
    slot: Arc<PipelineSlot>,
    gate: Arc<GateShared>,
    client: Arc<Shared>,
    emitted: u64,
    dropped: u64,
    max_key: i64,
    lowest_held: i64,
}

impl Gate {
    pub(crate) fn new(client: Arc<Shared>, slot: Arc<PipelineSlot>, gate: Arc<GateShared>) -> Self {
        Gate {
            colour: gate.identity.colour,
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
        &self.gate.identity
    }

    /// What to do with a record at `key`. `Hold` before the first plan and
    /// for keys at or above the horizon: keep the record and ask again once
    /// [`Gate::wait_until_decidable`] returns (or simply later).
    #[inline]
    pub fn decide(&mut self, key: Key) -> Decision {
        let decision = match self.cache.load() {
            Some(plan) => plan.decide(self.colour, key),
            None => Decision::Hold,
        };
        if key.0 > self.max_key {
            self.max_key = key.0;
        }
        match decision {
            Decision::Emit => self.emitted += 1,
            Decision::Drop => self.dropped += 1,
            Decision::Hold => self.note_hold(key),
        }
        decision
    }

    #[cold]
    fn note_hold(&mut self, key: Key) {
        if key.0 < self.lowest_held {
            self.lowest_held = key.0;
            self.gate.lowest_held.fetch_min(key.0, Ordering::Relaxed);
            self.flush();
            self.client.urgent.notify_one();
        }
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
    /// call [`Gate::decide`] for the record once this returns).
    pub async fn wait_until_decidable(&self, key: Key) -> Decision {
        let mut installed = self.slot.installed.subscribe();
        loop {
            installed.borrow_and_update();
            let decision = self.peek(key);
            if decision != Decision::Hold {
                return decision;
            }
            self.gate.lowest_held.fetch_min(key.0, Ordering::Relaxed);
            self.gate.dirty.store(true, Ordering::Relaxed);
            self.client.urgent.notify_one();
            if installed.changed().await.is_err() {
                return Decision::Hold;
            }
        }
    }

    /// Blocks the calling thread until `key` is decidable or `timeout`
    /// passes (then `Hold`). For callers that cannot buffer; never call it on
    /// an async runtime's thread.
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
            self.gate.lowest_held.fetch_min(key.0, Ordering::Relaxed);
            self.gate.dirty.store(true, Ordering::Relaxed);
            self.client.urgent.notify_one();
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
        let previous = self
            .gate
            .watermark
            .fetch_max(watermark.0, Ordering::Relaxed);
        self.flush();
        if watermark.0 > previous && self.slot.near_horizon(watermark) {
            self.client.urgent.notify_one();
        }
    }

    /// How many records the caller holds now and the lowest key among them.
    pub fn set_held(&mut self, count: u64, lowest: Option<Key>) {
        self.lowest_held = lowest.map_or(i64::MAX, |k| k.0);
        self.gate.held.store(count, Ordering::Relaxed);
        self.gate
            .lowest_held
            .store(self.lowest_held, Ordering::Relaxed);
        self.flush();
    }

    /// Marks the subtask's input idle (or active again).
    pub fn set_idle(&mut self, idle: bool) {
        self.gate.idle.store(idle, Ordering::Relaxed);
        self.flush();
    }

    /// Marks the subtask's input finished.
    pub fn finish(&mut self) {
        self.gate.finished.store(true, Ordering::Relaxed);
        self.flush();
        self.client.urgent.notify_one();
    }

    /// Publishes the local counters for the next progress report.
    pub fn flush(&mut self) {
        self.gate.emitted.store(self.emitted, Ordering::Relaxed);
        self.gate.dropped.store(self.dropped, Ordering::Relaxed);
        self.gate.max_key.fetch_max(self.max_key, Ordering::Relaxed);
        self.gate.dirty.store(true, Ordering::Relaxed);
    }

    /// Records emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.flush();
        let key = (
            self.gate.identity.pipeline.clone(),
            self.gate.identity.key(),
        );
        self.client.gates().remove(&key);
        let _ = self.client.commands.send(Command::Detach(key.0, key.1));
    }
}
