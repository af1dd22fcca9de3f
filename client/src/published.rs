//! What one gate publishes for the session task: its progress counters,
//! watermarks and held records, written by the gate's thread and read by
//! the session when it reports. This module owns every memory ordering of
//! that hand-off:
//!
//! - the held records of a subtask are written before its watermark, the
//!   watermark with release and read with acquire before them, so a report
//!   never shows a watermark without the records held below it;
//! - the "changed since the last report" flag is set after the values it
//!   announces and cleared by the report before it reads them (both
//!   sequentially consistent), so a change racing with a report is reported
//!   by the next one, never lost.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use cutover_core::{GateIdentity, GateProgress, Key};

/// "No record held" in the lowest held key.
const NONE_HELD: i64 = i64::MAX;

/// The published state of one gate.
pub(crate) struct PublishedGate {
    identity: GateIdentity,
    watermark: AtomicI64,
    max_key: AtomicI64,
    emitted: AtomicU64,
    dropped: AtomicU64,
    held: AtomicU64,
    lowest_held: AtomicI64,
    idle: AtomicBool,
    finished: AtomicBool,
    /// Watermark of the checkpoint a failover would restore, once
    /// `tracks_checkpoints` is set.
    checkpointed: AtomicI64,
    tracks_checkpoints: AtomicBool,
    /// Set on every change; the session reports the gate and clears it.
    changed: AtomicBool,
}

impl PublishedGate {
    pub(crate) fn new(identity: GateIdentity) -> Self {
        PublishedGate {
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
            changed: AtomicBool::new(true),
        }
    }

    /// Who the gate is.
    pub(crate) fn identity(&self) -> &GateIdentity {
        &self.identity
    }

    /// Publishes the counters kept locally by the gate.
    pub(crate) fn publish_counts(&self, emitted: u64, dropped: u64, max_key: i64) {
        self.emitted.store(emitted, Ordering::Relaxed);
        self.dropped.store(dropped, Ordering::Relaxed);
        self.max_key.fetch_max(max_key, Ordering::Relaxed);
        self.mark_changed();
    }

    /// Raises the watermark (after the held records it covers were
    /// published); returns the previous one.
    pub(crate) fn raise_watermark(&self, watermark: Key) -> Key {
        Key(self.watermark.fetch_max(watermark.0, Ordering::Release))
    }

    /// The caller holds `count` records, the lowest at `lowest`.
    pub(crate) fn set_held(&self, count: u64, lowest: Option<Key>) {
        self.held.store(count, Ordering::Relaxed);
        self.lowest_held
            .store(lowest.map_or(NONE_HELD, |k| k.0), Ordering::Relaxed);
    }

    /// A record at `key` waits for the horizon.
    pub(crate) fn note_held(&self, key: Key) {
        self.lowest_held.fetch_min(key.0, Ordering::Relaxed);
        self.mark_changed();
    }

    /// The input is idle (or active again).
    pub(crate) fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// The input is finished.
    pub(crate) fn set_finished(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    /// The gate tracks checkpoints; `watermark` is durable (restored from,
    /// or in a completed checkpoint).
    pub(crate) fn checkpointed(&self, watermark: Key) {
        self.checkpointed.fetch_max(watermark.0, Ordering::Relaxed);
        self.tracks_checkpoints.store(true, Ordering::Release);
    }

    /// Marks the gate as changed since the last report.
    pub(crate) fn mark_changed(&self) {
        self.changed.store(true, Ordering::SeqCst);
    }

    /// Clears the changed mark; whether it was set.
    pub(crate) fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::SeqCst)
    }

    /// The lowest key of a held record, with the watermark, if one is held.
    pub(crate) fn lowest_held(&self) -> Option<(Key, Key)> {
        let lowest = self.lowest_held.load(Ordering::Relaxed);
        (lowest != NONE_HELD).then(|| (Key(lowest), Key(self.watermark.load(Ordering::Relaxed))))
    }

    /// The gate's progress as reported.
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
