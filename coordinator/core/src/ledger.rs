//! The gate ledger of one pipeline: which gates exist, on which session, what
//! they acknowledged and how far they progressed. Kept in memory only; after
//! a coordinator restart it is rebuilt as gates reconnect.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::{Colour, Epoch, Key};
use crate::error::CoreError;
use crate::gate::{GateIdentity, GateKey, GateProgress, SessionId};
use crate::horizon::HorizonSignal;

/// One gate as the ledger knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateEntry {
    /// Its identity (latest registration).
    pub identity: GateIdentity,
    /// The live session carrying it, if any.
    pub session: Option<SessionId>,
    /// Latest progress reported.
    pub progress: GateProgress,
}

#[derive(Clone, Debug, Default)]
struct SessionEntry {
    gates: BTreeSet<GateKey>,
    acked: Epoch,
}

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
    /// Records emitted (totals reported).
    pub emitted: u64,
    /// Records dropped.
    pub dropped: u64,
    /// Records held now.
    pub held: u64,
}

/// The gates of one pipeline.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    gates: BTreeMap<GateKey, GateEntry>,
    sessions: HashMap<SessionId, SessionEntry>,
    parallelism: BTreeMap<(Colour, String), u32>,
}

impl Ledger {
    /// Registers `gates` on `session`, all or none. A gate live on another
    /// session is taken over only by a higher attempt.
    pub fn attach(
        &mut self,
        session: SessionId,
        gates: &[GateIdentity],
        held: Epoch,
    ) -> Result<(), CoreError> {
        for identity in gates {
            identity.validate()?;
            if let Some(entry) = self.gates.get(&identity.key())
                && let Some(live) = entry.session
                && live != session
                && entry.identity.attempt >= identity.attempt
            {
                return Err(CoreError::DuplicateGate {
                    gate: identity.key().to_string(),
                    attempt: identity.attempt,
                    live_attempt: entry.identity.attempt,
                });
            }
        }
        let entry = self.sessions.entry(session).or_default();
        entry.acked = entry.acked.max(held);
        for identity in gates {
            let key = identity.key();
            let previous = self.gates.insert(
                key.clone(),
                GateEntry {
                    identity: identity.clone(),
                    session: Some(session),
                    progress: GateProgress::default(),
                },
            );
            if let Some(previous) = previous {
                if let Some(old) = previous.session.filter(|&s| s != session)
                    && let Some(old) = self.sessions.get_mut(&old)
                {
                    old.gates.remove(&key);
                }
                // Keep the progress of a known gate: a reconnect is no regress.
                if let Some(entry) = self.gates.get_mut(&key) {
                    entry.progress = previous.progress;
                }
            }
            self.sessions
                .get_mut(&session)
                .expect("inserted above")
                .gates
                .insert(key);
            self.set_parallelism(identity.colour, &identity.gate_uid, identity.parallelism);
        }
        Ok(())
    }

    fn set_parallelism(&mut self, colour: Colour, uid: &str, parallelism: u32) {
        let slot = (colour, uid.to_string());
        if self.parallelism.get(&slot) == Some(&parallelism) {
            return;
        }
        self.parallelism.insert(slot, parallelism);
        // A rescaled operator: forget disconnected subtasks beyond the new
        // parallelism.
        self.gates.retain(|key, entry| {
            !(key.colour == colour
                && key.gate_uid == uid
                && key.subtask_index >= parallelism
                && entry.session.is_none())
        });
    }

    /// Removes gates from `session` (they stay known, disconnected).
    pub fn detach(&mut self, session: SessionId, gates: &[GateKey]) -> Result<(), CoreError> {
        let entry = self.sessions.get(&session);
        for key in gates {
            if !entry.is_some_and(|e| e.gates.contains(key)) {
                return Err(CoreError::UnknownGate {
                    gate: key.to_string(),
                });
            }
        }
        for key in gates {
            self.disconnect(session, key);
        }
        Ok(())
    }

    fn disconnect(&mut self, session: SessionId, key: &GateKey) {
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.gates.remove(key);
        }
        if let Some(gate) = self.gates.get_mut(key)
            && gate.session == Some(session)
        {
            gate.session = None;
        }
    }

    /// The session ended: its gates stay known, disconnected.
    pub fn close_session(&mut self, session: SessionId) {
        if let Some(entry) = self.sessions.remove(&session) {
            for key in entry.gates {
                if let Some(gate) = self.gates.get_mut(&key)
                    && gate.session == Some(session)
                {
                    gate.session = None;
                }
            }
        }
    }

    /// Records that `session` installed `epoch`.
    pub fn ack(&mut self, session: SessionId, epoch: Epoch) {
        let entry = self.sessions.entry(session).or_default();
        entry.acked = entry.acked.max(epoch);
    }

    /// Records a gate's progress; the gate must be on `session`.
    pub fn progress(
        &mut self,
        session: SessionId,
        key: &GateKey,
        progress: GateProgress,
    ) -> Result<(), CoreError> {
        match self.gates.get_mut(key) {
            Some(gate) if gate.session == Some(session) => {
                // Watermarks never go back for the policy's sake.
                let watermark = gate.progress.watermark.max(progress.watermark);
                let max_key = gate.progress.max_key.max(progress.max_key);
                gate.progress = GateProgress {
                    watermark,
                    max_key,
                    ..progress
                };
                Ok(())
            }
            _ => Err(CoreError::UnknownGate {
                gate: key.to_string(),
            }),
        }
    }

    /// Whether `key` is a gate on `session`.
    pub fn is_on_session(&self, session: SessionId, key: &GateKey) -> bool {
        self.gates
            .get(key)
            .is_some_and(|g| g.session == Some(session))
    }

    /// Signals for the horizon policy: every known gate's watermark, and the
    /// held keys of connected gates.
    pub fn horizon_signals(&self) -> impl Iterator<Item = HorizonSignal> + '_ {
        self.gates.values().map(|g| HorizonSignal {
            watermark: g.progress.watermark,
            lowest_held: g.session.and(g.progress.lowest_held),
        })
    }

    /// Whether every expected gate of `colour` is known and past `mark`
    /// (or idle, or finished). False when no gate of `colour` is known.
    pub fn all_past(&self, colour: Colour, mark: Key) -> bool {
        let mut any = false;
        for ((c, uid), &parallelism) in &self.parallelism {
            if *c != colour {
                continue;
            }
            any = true;
            for subtask_index in 0..parallelism {
                let key = GateKey {
                    colour,
                    gate_uid: uid.clone(),
                    subtask_index,
                };
                let done = self.gates.get(&key).is_some_and(|g| {
                    g.progress.watermark >= mark || g.progress.idle || g.progress.finished
                });
                if !done {
                    return false;
                }
            }
        }
        any
    }

    /// Counts for `colour` at `epoch`.
    pub fn colour_gates(&self, colour: Colour, epoch: Epoch) -> ColourGates {
        let expected = self
            .parallelism
            .iter()
            .filter(|((c, _), _)| *c == colour)
            .map(|(_, &p)| p)
            .sum();
        let mut out = ColourGates {
            expected,
            connected: 0,
            acked: 0,
            lowest_watermark: Key::MIN,
            highest_watermark: Key::MIN,
            emitted: 0,
            dropped: 0,
            held: 0,
        };
        let mut lowest: Option<Key> = None;
        for gate in self.gates.values().filter(|g| g.identity.colour == colour) {
            let p = &gate.progress;
            out.highest_watermark = out.highest_watermark.max(p.watermark);
            out.emitted += p.emitted;
            out.dropped += p.dropped;
            out.held += p.held;
            if let Some(session) = gate.session {
                out.connected += 1;
                lowest = Some(lowest.map_or(p.watermark, |l| l.min(p.watermark)));
                if self
                    .sessions
                    .get(&session)
                    .is_some_and(|s| s.acked >= epoch)
                {
                    out.acked += 1;
                }
            }
        }
        out.lowest_watermark = lowest.unwrap_or(Key::MIN);
        out
    }

    /// Every gate known, in key order.
    pub fn gates(&self) -> impl Iterator<Item = &GateEntry> {
        self.gates.values()
    }
}
