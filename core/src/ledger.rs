//! The gate ledger of one pipeline: which gates exist, on which session, what
//! they acknowledged and how far they progressed. Kept in memory only; after
//! a coordinator restart it is rebuilt as gates reconnect.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::{Colour, Epoch};
use crate::error::CoreError;
use crate::gate::{GateIdentity, GateKey, GateProgress, SessionId};
use crate::horizon::HorizonSignal;
use crate::status::ColourGates;
use crate::tally::{Tallies, Tally};

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
    /// Gates carried, per colour: `[blue, green]`.
    per_colour: [u32; 2],
}

fn slot(colour: Colour) -> usize {
    match colour {
        Colour::Blue => 0,
        Colour::Green => 1,
    }
}

/// Starts a restarted task's progress over, keeping `tally` in step
/// (connected-watermark bookkeeping is the caller's). Returns whether the
/// highest watermark must be recomputed.
fn restart(tally: &mut Tally, progress: &mut GateProgress) -> bool {
    let old = std::mem::take(progress);
    let reset = tally.forgotten(&old);
    tally.known(progress);
    reset
}

/// The gates of one pipeline.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    pub(crate) gates: BTreeMap<GateKey, GateEntry>,
    sessions: HashMap<SessionId, SessionEntry>,
    pub(crate) parallelism: BTreeMap<(Colour, String), u32>,
    /// Kept in step with `gates` and `sessions` by every method below.
    tallies: Tallies,
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
        self.check_attach(session, gates)?;
        self.ack(session, held);
        let acked = self.sessions.get(&session).map_or(held, |e| e.acked);
        let mut reset_highest = [false; 2];
        for identity in gates {
            let key = identity.key();
            let colour = identity.colour;
            reset_highest[slot(colour)] |= match self.gates.get(&key).map(|g| g.session) {
                Some(on) if on == Some(session) => self.reregister(&key, identity, acked),
                Some(_) => self.take_over(session, &key, identity, acked),
                None => {
                    self.register_new(session, key.clone(), identity, acked);
                    false
                }
            };
            let entry = self.sessions.entry(session).or_default();
            if entry.gates.insert(key) {
                entry.per_colour[slot(colour)] += 1;
            }
            self.set_parallelism(colour, &identity.gate_uid, identity.parallelism);
        }
        for colour in Colour::ALL {
            if reset_highest[slot(colour)] {
                self.recompute_highest(colour);
            }
        }
        Ok(())
    }

    /// Refuses malformed gates, a gate listed twice, and a gate live on
    /// another session with the same or a newer attempt.
    fn check_attach(&self, session: SessionId, gates: &[GateIdentity]) -> Result<(), CoreError> {
        let mut listed = BTreeSet::new();
        for identity in gates {
            identity.validate()?;
            if !listed.insert(identity.key()) {
                return Err(CoreError::GateListedTwice {
                    gate: identity.key().to_string(),
                });
            }
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
        Ok(())
    }

    /// A gate registered again on its own session: a restarted task starts
    /// its progress over. Returns whether the highest watermark must be
    /// recomputed.
    fn reregister(&mut self, key: &GateKey, identity: &GateIdentity, acked: Epoch) -> bool {
        let Some(gate) = self.gates.get_mut(key) else {
            return false;
        };
        let mut reset = false;
        if !gate.identity.same_run(identity) {
            let tally = self.tallies.of_mut(identity.colour);
            tally.disconnected(acked, &gate.progress);
            reset = restart(tally, &mut gate.progress);
            tally.connected(acked, &gate.progress);
        }
        gate.identity = identity.clone();
        reset
    }

    /// A known gate joins `session`, leaving the session it was on, if any:
    /// a reconnect keeps its progress, a restarted task (another job id or
    /// attempt) resumed from a checkpoint and starts over. Returns whether
    /// the highest watermark must be recomputed.
    fn take_over(
        &mut self,
        session: SessionId,
        key: &GateKey,
        identity: &GateIdentity,
        acked: Epoch,
    ) -> bool {
        let colour = identity.colour;
        let Some(gate) = self.gates.get_mut(key) else {
            return false;
        };
        if let Some(old) = gate.session
            && let Some(old) = self.sessions.get_mut(&old)
        {
            old.gates.remove(key);
            old.per_colour[slot(colour)] -= 1;
            self.tallies
                .of_mut(colour)
                .disconnected(old.acked, &gate.progress);
        }
        let reset = !gate.identity.same_run(identity)
            && restart(self.tallies.of_mut(colour), &mut gate.progress);
        gate.identity = identity.clone();
        gate.session = Some(session);
        self.tallies.of_mut(colour).connected(acked, &gate.progress);
        reset
    }

    /// A gate the ledger did not know.
    fn register_new(
        &mut self,
        session: SessionId,
        key: GateKey,
        identity: &GateIdentity,
        acked: Epoch,
    ) {
        let progress = GateProgress::default();
        let tally = self.tallies.of_mut(identity.colour);
        tally.known(&progress);
        tally.connected(acked, &progress);
        self.gates.insert(
            key,
            GateEntry {
                identity: identity.clone(),
                session: Some(session),
                progress,
            },
        );
    }

    fn recompute_highest(&mut self, colour: Colour) {
        self.tallies.of_mut(colour).reset_highest(
            self.gates
                .values()
                .filter(|g| g.identity.colour == colour)
                .map(|g| g.progress.watermark),
        );
    }

    fn set_parallelism(&mut self, colour: Colour, uid: &str, parallelism: u32) {
        let slot = (colour, uid.to_string());
        if self.parallelism.get(&slot) == Some(&parallelism) {
            return;
        }
        self.parallelism.insert(slot, parallelism);
        // A rescaled operator: forget disconnected subtasks beyond the new
        // parallelism.
        let tally = self.tallies.of_mut(colour);
        let mut reset = false;
        self.gates.retain(|key, entry| {
            let forget = key.colour == colour
                && key.gate_uid == uid
                && key.subtask_index >= parallelism
                && entry.session.is_none();
            if forget {
                reset |= tally.forgotten(&entry.progress);
            }
            !forget
        });
        if reset {
            self.recompute_highest(colour);
        }
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
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        if !entry.gates.remove(key) {
            return;
        }
        entry.per_colour[slot(key.colour)] -= 1;
        if let Some(gate) = self.gates.get_mut(key) {
            gate.session = None;
            self.tallies
                .of_mut(key.colour)
                .disconnected(entry.acked, &gate.progress);
        }
    }

    /// The session ended: its gates stay known, disconnected.
    pub fn close_session(&mut self, session: SessionId) {
        if let Some(entry) = self.sessions.remove(&session) {
            for key in entry.gates {
                if let Some(gate) = self.gates.get_mut(&key) {
                    gate.session = None;
                    self.tallies
                        .of_mut(key.colour)
                        .disconnected(entry.acked, &gate.progress);
                }
            }
        }
    }

    /// Records that `session` installed `epoch`.
    pub fn ack(&mut self, session: SessionId, epoch: Epoch) {
        let entry = self.sessions.entry(session).or_default();
        if epoch <= entry.acked {
            return;
        }
        for colour in [Colour::Blue, Colour::Green] {
            self.tallies
                .of_mut(colour)
                .reacked(entry.acked, epoch, entry.per_colour[slot(colour)]);
        }
        entry.acked = epoch;
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
                // Within one attempt the checkpoint a failover restores from
                // only moves forward.
                let checkpointed = match (gate.progress.checkpointed, progress.checkpointed) {
                    (Some(before), Some(now)) => Some(before.max(now)),
                    (_, now) => now,
                };
                let next = GateProgress {
                    watermark,
                    max_key,
                    checkpointed,
                    ..progress
                };
                self.tallies
                    .of_mut(key.colour)
                    .progressed(&gate.progress, &next, true);
                gate.progress = next;
                Ok(())
            }
            _ => Err(CoreError::UnknownGate {
                gate: key.to_string(),
            }),
        }
    }

    /// The epoch `session` acknowledged.
    pub(crate) fn session_acked(&self, session: SessionId) -> Epoch {
        self.sessions.get(&session).map_or(Epoch(0), |e| e.acked)
    }

    /// The gate `key`, if known.
    pub fn gate(&self, key: &GateKey) -> Option<&GateEntry> {
        self.gates.get(key)
    }

    /// Whether `key` is a gate on `session`.
    pub fn is_on_session(&self, session: SessionId, key: &GateKey) -> bool {
        self.gates
            .get(key)
            .is_some_and(|g| g.session == Some(session))
    }

    /// Signals for the horizon policy: the watermarks of active connected
    /// gates and the held keys of connected gates, with their colours.
    pub fn horizon_signals(&self) -> impl Iterator<Item = HorizonSignal> + '_ {
        self.gates
            .values()
            .filter(|g| g.session.is_some())
            .map(|g| HorizonSignal {
                colour: g.identity.colour,
                active_watermark: g.progress.active_watermark(),
                finished_watermark: g.progress.finished_watermark(),
                finished: g.progress.is_finished(),
                lowest_held: g.progress.lowest_held,
            })
    }

    /// Forgets gate operator `uid` of `colour`: its disconnected gates and
    /// its parallelism. Refused while any of its gates is connected.
    pub fn forget_operator(&mut self, colour: Colour, uid: &str) -> Result<(), CoreError> {
        let connected = self
            .gates_of(colour)
            .filter(|g| g.identity.gate_uid == uid && g.session.is_some())
            .count();
        if connected > 0 {
            return Err(CoreError::OperatorConnected {
                colour,
                gate_uid: uid.chars().take(80).collect(),
                connected: u32::try_from(connected).unwrap_or(u32::MAX),
            });
        }
        self.parallelism.remove(&(colour, uid.to_string()));
        let tally = self.tallies.of_mut(colour);
        let mut reset = false;
        self.gates.retain(|key, entry| {
            let forget = key.colour == colour && key.gate_uid == uid;
            if forget {
                reset |= tally.forgotten(&entry.progress);
            }
            !forget
        });
        if reset {
            self.recompute_highest(colour);
        }
        Ok(())
    }

    /// Counts for `colour` at `epoch`: O(log n), from running tallies.
    pub fn colour_gates(&self, colour: Colour, epoch: Epoch) -> ColourGates {
        let expected = self
            .parallelism
            .iter()
            .filter(|((c, _), _)| *c == colour)
            .map(|(_, &p)| p)
            .sum();
        self.tallies.of(colour).counts(expected, epoch)
    }

    /// Every gate known, in key order.
    pub fn gates(&self) -> impl Iterator<Item = &GateEntry> {
        self.gates.values()
    }
}
