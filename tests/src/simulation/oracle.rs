//! What the simulation checks, from the gates' true state rather than the
//! coordinator's view: commits per record, and the decisions every job made
//! on every key, replays included.

use std::collections::HashMap;

use anyhow::{bail, ensure};
use cutover_core::{Colour, Decision, Key, Plan};

/// Every decision and commit of a run.
#[derive(Debug, Default)]
pub struct Oracle {
    /// Commits per record.
    commits: Vec<u32>,
    /// Records that arrived behind the watermark of some gate.
    late: Vec<bool>,
    /// First decision of each job (by index) on each key.
    by_job: HashMap<(usize, Key), Decision>,
    /// Last decision of each colour on each key.
    by_colour: HashMap<(Colour, Key), (usize, Decision)>,
    /// Every (colour, key, decision) decided on a record that was not late.
    decided: Vec<(Colour, Key, Decision)>,
    /// Whether decisions are checked (EVENT_TIME mode: keys travel with
    /// records, so a replay decides the same keys).
    check_decisions: bool,
    /// Decisions checked.
    pub checked: u64,
}

impl Oracle {
    /// An oracle for `records` records.
    pub fn new(records: usize, check_decisions: bool) -> Self {
        Oracle {
            commits: vec![0; records],
            late: vec![false; records],
            check_decisions,
            ..Oracle::default()
        }
    }

    /// Record `id` arrived behind the watermark of the gate reading it.
    pub fn late(&mut self, id: u32) {
        self.late[id as usize] = true;
    }

    /// Whether record `id` arrived late somewhere.
    pub fn is_late(&self, id: u32) -> bool {
        self.late[id as usize]
    }

    /// Job `job` of `colour` decided `key` (for record `id`). A job replaying
    /// a key decides it as it did the first time; a colour never emits a key
    /// it dropped before (a later job of it may drop a key an earlier one
    /// emitted: the key was retired).
    pub fn decided(
        &mut self,
        job: usize,
        colour: Colour,
        key: Key,
        decision: Decision,
        id: u32,
    ) -> anyhow::Result<()> {
        if !self.check_decisions || decision == Decision::Hold || self.is_late(id) {
            return Ok(());
        }
        self.checked += 1;
        let first = *self.by_job.entry((job, key)).or_insert(decision);
        ensure!(
            first == decision,
            "job {job} ({colour}) decided key {key} {decision:?} on a replay, {first:?} before"
        );
        if let Some(&(before_job, before)) = self.by_colour.get(&(colour, key))
            && before == Decision::Drop
            && decision == Decision::Emit
        {
            bail!("{colour} emits key {key} (job {job}) that it dropped before (job {before_job})");
        }
        self.by_colour.insert((colour, key), (job, decision));
        self.decided.push((colour, key, decision));
        Ok(())
    }

    /// Record `id` was committed.
    pub fn commit(&mut self, id: u32) {
        self.commits[id as usize] += 1;
    }

    /// Every decision agrees with the final plan, unless the final plan
    /// retired the key for that colour.
    pub fn agrees_with(&self, plan: &Plan) -> anyhow::Result<()> {
        for &(colour, key, decision) in &self.decided {
            let now = plan.decide(colour, key);
            let retired = decision == Decision::Emit
                && now == Decision::Drop
                && key < plan.retired.of(colour);
            ensure!(
                now == decision || retired || now == Decision::Hold,
                "{colour} decided {decision:?} at {key}, the final plan says {now:?}"
            );
        }
        Ok(())
    }

    /// (duplicates, gaps, late records): extra commits of any record, and
    /// records committed by no job that were never late.
    pub fn tally(&self) -> (usize, usize, usize) {
        let duplicates = self
            .commits
            .iter()
            .map(|&c| c.saturating_sub(1) as usize)
            .sum();
        let gaps = self
            .commits
            .iter()
            .zip(&self.late)
            .filter(|&(&c, &late)| c == 0 && !late)
            .count();
        let late = self.late.iter().filter(|&&l| l).count();
        (duplicates, gaps, late)
    }
}
