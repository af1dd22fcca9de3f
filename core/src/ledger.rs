//! The gate ledger of one pipeline: which gates exist, on which session, what
//! they acknowledged and how far they progressed. Kept in memory only; after
//! a coordinator restart it is rebuilt as gates reconnect.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::{Colour, Epoch, Key};
use crate::error::CoreError;
use crate::gate::{GateIdentity, GateKey, GateProgress, SessionId};
use crate::horizon::HorizonSignal;
use crate::operators::Operators;
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
    gates: BTreeMap<GateKey, GateEntry>,
    sessions: HashMap<SessionId, SessionEntry>,
    parallelism: BTreeMap<(Colour, String), u32>,
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
        self.ack(session, held);
        let acked = self.sessions.get(&session).map_or(held, |e| e.acked);
        let mut reset_highest = [false; 2];
        for identity in gates {
            let key = identity.key();
            let colour = identity.colour;
            match self.gates.get_mut(&key) {
                Some(gate) if gate.session == Some(session) => {
                    if !gate.identity.same_run(identity) {
                        let tally = self.tallies.of_mut(colour);
                        tally.disconnected(acked, gate.progress.watermark);
                        reset_highest[slot(colour)] |= restart(tally, &mut gate.progress);
                        tally.connected(acked, gate.progress.watermark);
                    }
                    gate.identity = identity.clone();
                }
                Some(gate) => {
                    // Known: take it from the session it was on, if any.
                    if let Some(old) = gate.session
                        && let Some(old) = self.sessions.get_mut(&old)
                    {
                        old.gates.remove(&key);
                        old.per_colour[slot(colour)] -= 1;
                        self.tallies
                            .of_mut(colour)
                            .disconnected(old.acked, gate.progress.watermark);
                    }
                    // A reconnect keeps its progress; a restarted task
                    // resumed from a checkpoint and starts over.
                    if !gate.identity.same_run(identity) {
                        reset_highest[slot(colour)] |=
                            restart(self.tallies.of_mut(colour), &mut gate.progress);
                    }
                    gate.identity = identity.clone();
                    gate.session = Some(session);
                    self.tallies
                        .of_mut(colour)
                        .connected(acked, gate.progress.watermark);
                }
                None => {
                    let progress = GateProgress::default();
                    let tally = self.tallies.of_mut(colour);
                    tally.known(&progress);
                    tally.connected(acked, progress.watermark);
                    self.gates.insert(
                        key.clone(),
                        GateEntry {
                            identity: identity.clone(),
                            session: Some(session),
                            progress,
                        },
                    );
                }
            }
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
                .disconnected(entry.acked, gate.progress.watermark);
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
                        .disconnected(entry.acked, gate.progress.watermark);
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

    /// The gate operators of `colour` the ledger knows: uid, parallelism.
    pub fn operators(&self, colour: Colour) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.parallelism
            .iter()
            .filter(move |((c, _), _)| *c == colour)
            .map(|((_, uid), &p)| (uid.as_str(), p))
    }

    /// Gates of `recorded` operators of `colour` the ledger does not know
    /// (their gates have not connected since this coordinator started).
    pub fn unknown_expected(&self, colour: Colour, recorded: &Operators) -> u32 {
        recorded
            .iter()
            .filter(|(uid, _)| !self.parallelism.contains_key(&(colour, uid.to_string())))
            .map(|(_, &p)| p)
            .sum()
    }

    /// The operators of `colour`'s running job: those with a gate of a job
    /// that has a connected gate of `colour` (disconnected gates of that job
    /// included), with their latest parallelism. Gates left behind by an
    /// earlier job of the colour — another job id, nothing connected — are
    /// not part of it. Empty while no gate of `colour` is connected.
    /// O(gates of `colour`).
    pub fn current_operators(&self, colour: Colour) -> Operators {
        self.running_operators(colour, &self.running_jobs(colour))
            .into_iter()
            .map(|(uid, p)| (uid.to_string(), p))
            .collect()
    }

    /// The gates of `colour`, in key order.
    fn gates_of(&self, colour: Colour) -> impl Iterator<Item = &GateEntry> + '_ {
        let first = GateKey {
            colour,
            gate_uid: String::new(),
            subtask_index: 0,
        };
        self.gates
            .range(first..)
            .take_while(move |(key, _)| key.colour == colour)
            .map(|(_, gate)| gate)
    }

    /// Job ids of the connected gates of `colour`.
    fn running_jobs(&self, colour: Colour) -> BTreeSet<&str> {
        self.gates_of(colour)
            .filter(|g| g.session.is_some())
            .map(|g| g.identity.job_id.as_str())
            .collect()
    }

    /// [`Ledger::current_operators`], borrowed, given the running jobs.
    fn running_operators<'a>(
        &'a self,
        colour: Colour,
        running: &BTreeSet<&str>,
    ) -> BTreeMap<&'a str, u32> {
        let mut operators = BTreeMap::new();
        for gate in self.gates_of(colour) {
            let uid = gate.identity.gate_uid.as_str();
            if !operators.contains_key(uid)
                && running.contains(gate.identity.job_id.as_str())
                && let Some(&p) = self.parallelism.get(&(colour, uid.to_string()))
            {
                operators.insert(uid, p);
            }
        }
        operators
    }

    /// Whether the old colour of a transition at `at` is drained: every gate
    /// of `colour` (see [`Ledger::every_gate`]) has emitted everything it
    /// owns below the cutover for good, whatever Flink replays:
    ///
    /// - it holds no record below `at` (a record still held would be lost
    ///   with the job's savepoint), and
    /// - it finished its input, or its last completed checkpoint is at or
    ///   past `mark` (a failover restarts it there), or it is connected and
    ///   idle, or — for a gate that cannot report checkpoints — it is
    ///   connected with its watermark at or past `mark`.
    ///
    /// A disconnected gate that cannot report checkpoints counts only once
    /// finished: its task may be restarting from a checkpoint behind what it
    /// reported.
    pub fn drained(&self, colour: Colour, at: Key, mark: Key, recorded: &Operators) -> bool {
        self.every_gate(colour, recorded, |gate| {
            let p = &gate.progress;
            let live = gate.session.is_some();
            p.lowest_held.is_none_or(|held| held >= at)
                && (p.is_finished()
                    || p.checkpointed.is_some_and(|c| c >= mark)
                    || (live && (p.idle || (p.checkpointed.is_none() && p.watermark >= mark))))
        })
    }

    /// Whether every gate of `colour` (see [`Ledger::every_gate`]) reported
    /// a last completed checkpoint at or past `mark`: no failover of its job
    /// can replay a key below `mark` minus the allowed lateness.
    pub fn checkpointed_past(&self, colour: Colour, mark: Key, recorded: &Operators) -> bool {
        self.every_gate(colour, recorded, |gate| {
            gate.progress.checkpointed.is_some_and(|c| c >= mark)
        })
    }

    /// Whether every gate of `colour` is known and satisfies `pass`: every
    /// gate of the running job's operators ([`Ledger::current_operators`];
    /// of every operator the ledger knows while none of `colour` is
    /// connected) and of every operator in `recorded`, so an operator whose
    /// gates have not reconnected since a restart keeps this false. A gate
    /// slot still holding a gate of an earlier job counts as failing. False
    /// when no operator is known. O(gates of `colour`).
    fn every_gate(
        &self,
        colour: Colour,
        recorded: &Operators,
        pass: impl Fn(&GateEntry) -> bool,
    ) -> bool {
        if self.unknown_expected(colour, recorded) > 0 {
            return false;
        }
        let running = self.running_jobs(colour);
        let mut operators = self.running_operators(colour, &running);
        if operators.is_empty() {
            operators.extend(self.operators(colour));
        }
        for (uid, &p) in recorded {
            operators.entry(uid.as_str()).or_insert(p);
        }
        if operators.is_empty() {
            return false;
        }
        // Subtasks that pass, per operator; gate keys are unique, so every
        // operator must reach its parallelism.
        let mut passed: BTreeMap<&str, u32> = BTreeMap::new();
        for gate in self.gates_of(colour) {
            let uid = gate.identity.gate_uid.as_str();
            let Some(&parallelism) = operators.get(uid) else {
                continue;
            };
            let of_running_job =
                running.is_empty() || running.contains(gate.identity.job_id.as_str());
            if gate.identity.subtask_index < parallelism && of_running_job && pass(gate) {
                *passed.entry(uid).or_insert(0) += 1;
            }
        }
        operators
            .iter()
            .all(|(uid, &parallelism)| passed.get(uid).copied().unwrap_or(0) >= parallelism)
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
