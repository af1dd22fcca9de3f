//! Running per-colour counts of a ledger.
//!
//! Status is read on every change a watcher sees (each ack, each progress
//! report), so it must not walk every gate: at 10,000 gates that walk cost
//! more than everything else the coordinator does. The ledger instead tells
//! its [`Tally`] of every change as it happens, and a status costs
//! O(log n) in the number of distinct epochs and watermarks.

use std::collections::BTreeMap;

use crate::domain::{Colour, Epoch, Key};
use crate::gate::GateProgress;
use crate::status::ColourGates;

/// Counts of the gates of one colour.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// Connected gates, by the epoch their session acknowledged.
    acked_at: BTreeMap<Epoch, u32>,
    /// Watermarks of connected gates (a multiset).
    connected_watermarks: BTreeMap<Key, u32>,
    /// Checkpointed watermarks of connected gates that report checkpoints
    /// (a multiset).
    connected_checkpointed: BTreeMap<Key, u32>,
    /// Highest watermark among all known gates.
    highest_watermark: Option<Key>,
    /// Sums over all known gates (wrapping, so removals stay exact).
    emitted: u64,
    dropped: u64,
    held: u64,
}

fn add<K: Ord>(counts: &mut BTreeMap<K, u32>, key: K, n: u32) {
    if n > 0 {
        *counts.entry(key).or_insert(0) += n;
    }
}

fn remove<K: Ord>(counts: &mut BTreeMap<K, u32>, key: K, n: u32) {
    if n == 0 {
        return;
    }
    if let Some(count) = counts.get_mut(&key) {
        *count = count.saturating_sub(n);
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

impl Tally {
    /// A gate became known with `progress`.
    pub(crate) fn known(&mut self, progress: &GateProgress) {
        self.emitted = self.emitted.wrapping_add(progress.emitted);
        self.dropped = self.dropped.wrapping_add(progress.dropped);
        self.held = self.held.wrapping_add(progress.held);
        self.raise_highest(progress.watermark);
    }

    /// A disconnected gate was forgotten. Returns whether the highest
    /// watermark must be recomputed ([`Tally::reset_highest`]).
    #[must_use]
    pub(crate) fn forgotten(&mut self, progress: &GateProgress) -> bool {
        self.emitted = self.emitted.wrapping_sub(progress.emitted);
        self.dropped = self.dropped.wrapping_sub(progress.dropped);
        self.held = self.held.wrapping_sub(progress.held);
        self.highest_watermark
            .is_some_and(|highest| progress.watermark >= highest)
    }

    /// Sets the highest watermark from the watermarks of every known gate.
    pub(crate) fn reset_highest(&mut self, watermarks: impl Iterator<Item = Key>) {
        self.highest_watermark = watermarks.max();
    }

    fn raise_highest(&mut self, watermark: Key) {
        self.highest_watermark = Some(
            self.highest_watermark
                .map_or(watermark, |h| h.max(watermark)),
        );
    }

    /// A known gate with `progress` joined a session that acknowledged
    /// `acked`.
    pub(crate) fn connected(&mut self, acked: Epoch, progress: &GateProgress) {
        add(&mut self.acked_at, acked, 1);
        add(&mut self.connected_watermarks, progress.watermark, 1);
        if let Some(checkpointed) = progress.checkpointed {
            add(&mut self.connected_checkpointed, checkpointed, 1);
        }
    }

    /// A gate with `progress` left its session, which had acknowledged
    /// `acked`.
    pub(crate) fn disconnected(&mut self, acked: Epoch, progress: &GateProgress) {
        remove(&mut self.acked_at, acked, 1);
        remove(&mut self.connected_watermarks, progress.watermark, 1);
        if let Some(checkpointed) = progress.checkpointed {
            remove(&mut self.connected_checkpointed, checkpointed, 1);
        }
    }

    /// A session carrying `gates` gates of this colour moved its
    /// acknowledged epoch from `from` to `to`.
    pub(crate) fn reacked(&mut self, from: Epoch, to: Epoch, gates: u32) {
        remove(&mut self.acked_at, from, gates);
        add(&mut self.acked_at, to, gates);
    }

    /// A gate's progress changed from `old` to `new`.
    pub(crate) fn progressed(&mut self, old: &GateProgress, new: &GateProgress, connected: bool) {
        self.emitted = self
            .emitted
            .wrapping_sub(old.emitted)
            .wrapping_add(new.emitted);
        self.dropped = self
            .dropped
            .wrapping_sub(old.dropped)
            .wrapping_add(new.dropped);
        self.held = self.held.wrapping_sub(old.held).wrapping_add(new.held);
        self.raise_highest(new.watermark);
        if connected && old.watermark != new.watermark {
            remove(&mut self.connected_watermarks, old.watermark, 1);
            add(&mut self.connected_watermarks, new.watermark, 1);
        }
        if connected && old.checkpointed != new.checkpointed {
            if let Some(checkpointed) = old.checkpointed {
                remove(&mut self.connected_checkpointed, checkpointed, 1);
            }
            if let Some(checkpointed) = new.checkpointed {
                add(&mut self.connected_checkpointed, checkpointed, 1);
            }
        }
    }

    /// The counts at `epoch`, with `expected` gates announced.
    pub(crate) fn counts(&self, expected: u32, epoch: Epoch) -> ColourGates {
        ColourGates {
            expected,
            connected: self.acked_at.values().sum(),
            acked: self.acked_at.range(epoch..).map(|(_, n)| n).sum(),
            lowest_watermark: self
                .connected_watermarks
                .keys()
                .next()
                .copied()
                .unwrap_or(Key::MIN),
            highest_watermark: self.highest_watermark.unwrap_or(Key::MIN),
            lowest_checkpointed: self.connected_checkpointed.keys().next().copied(),
            emitted: self.emitted,
            dropped: self.dropped,
            held: self.held,
        }
    }
}

/// One tally per colour.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tallies {
    blue: Tally,
    green: Tally,
}

impl Tallies {
    pub(crate) fn of(&self, colour: Colour) -> &Tally {
        match colour {
            Colour::Blue => &self.blue,
            Colour::Green => &self.green,
        }
    }

    pub(crate) fn of_mut(&mut self, colour: Colour) -> &mut Tally {
        match colour {
            Colour::Blue => &mut self.blue,
            Colour::Green => &mut self.green,
        }
    }
}
