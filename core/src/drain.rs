//! Which gates must be past a mark, and when they are: the bookkeeping
//! behind DRAINED and behind retiring the running colour's keys.
//!
//! The rule, in a few sentences. A colour's *running job* is every job id
//! with a connected gate of that colour; its *operators* are the gate
//! operators (uid, parallelism) of the running job, plus those the document
//! records for the colour (a restarted coordinator waits for them), or —
//! while none of the colour's gates is connected — every operator the ledger
//! knows. The colour is past a mark when every subtask of every such
//! operator has a gate of the running job that passes; an operator recorded
//! but not seen since a restart, or a subtask whose slot still holds a gate
//! of an earlier job, does not pass. A gate *drains* when it holds nothing
//! below the cutover and finished, or its last completed checkpoint is past
//! the mark, or it is connected and idle, or — without checkpoint knowledge
//! — connected with its watermark past the mark. A gate is *checkpointed
//! past* a mark when it reported a completed checkpoint at or past it.
//!
//! The table tests of these rules are in `tests/drain_table.rs`.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{Colour, Key};
use crate::gate::GateKey;
use crate::ledger::{GateEntry, Ledger};
use crate::operators::Operators;

/// The per-gate rule of [`Ledger::drained`].
fn drains(gate: &GateEntry, at: Key, mark: Key) -> bool {
    let p = &gate.progress;
    let live = gate.session.is_some();
    p.lowest_held.is_none_or(|held| held >= at)
        && (p.is_finished()
            || p.checkpointed.is_some_and(|c| c >= mark)
            || (live && (p.idle || (p.checkpointed.is_none() && p.watermark >= mark))))
}

impl Ledger {
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
    pub(crate) fn gates_of(&self, colour: Colour) -> impl Iterator<Item = &GateEntry> + '_ {
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
        self.every_gate(colour, recorded, |gate| drains(gate, at, mark))
    }

    /// Whether every gate of `colour` this ledger has drained (the gates it
    /// has, whether or not they are all of the colour's gates): what a
    /// coordinator tells the fleet of the gates it serves.
    pub fn served_drained(&self, colour: Colour, at: Key, mark: Key) -> bool {
        self.gates_of(colour).all(|gate| drains(gate, at, mark))
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
}
