//! Several coordinators serving the pipeline together: each renews its
//! liveness record, reads the store (its watch), publishes its serving
//! report when its digest changed, and folds the live reports of the
//! others into its view — all with the real core's fleet rules. Faults:
//! a coordinator restarts (a new process with a new id, its old records
//! left behind) or is paused (it answers nothing, renews nothing; its
//! clients notice after a keep-alive and move to the next coordinator).

use anyhow::Context;
use rand::Rng;

use super::coordinator::SimCoordinator;
use super::world::{Event, World};

/// How long a client takes to notice a coordinator that stopped answering
/// (virtual ms): longer than the time-to-live, as the defaults are.
const KEEPALIVE: std::ops::Range<u64> = 250..450;

impl World {
    /// Coordinator `c`'s periodic turn: renew, read the store and the
    /// others' records, publish its report if it changed, decide.
    pub(super) fn renew(&mut self, c: usize) -> anyhow::Result<()> {
        if self.paused(c) {
            let at = self.coordinators[c].paused_until;
            self.at(at, Event::Renew(c));
            return Ok(());
        }
        self.after(30..60, Event::Renew(c));
        let now = self.now;
        let coordinator = &mut self.coordinators[c];
        coordinator.renewal += 1;
        let id = coordinator.id.clone();
        self.renewals.insert(id.clone(), coordinator.renewal);
        if coordinator.core.is_none() {
            if self.store.load_blocking(&self.name)?.is_none() {
                return Ok(());
            }
            self.core_mut(c)?;
        }
        self.sync(c)?;
        // The others' liveness, by this coordinator's clock.
        let coordinator = &mut self.coordinators[c];
        let known: Vec<_> = coordinator
            .liveness
            .known(now)
            .map(|(id, _)| id.clone())
            .collect();
        for gone in known.iter().filter(|id| !self.renewals.contains_key(*id)) {
            coordinator.liveness.forget(gone);
        }
        for (other, &counter) in &self.renewals {
            coordinator.liveness.observe(other, counter, now);
        }
        let live: Vec<_> = self
            .fleet_reports
            .values()
            .filter(|r| r.coordinator != id && coordinator.liveness.is_live(&r.coordinator, now))
            .cloned()
            .collect();
        let core = &mut coordinator.core.as_mut().context("loaded above")?.0;
        core.set_reports(live);
        let digest = core.report_digest();
        if coordinator.published.as_ref() != Some(&digest) {
            coordinator.sequence += 1;
            let report = core.own_report(id.clone(), coordinator.sequence);
            self.fleet_reports.insert(id, report);
            coordinator.published = Some(digest);
            self.report.report_writes += 1;
        }
        self.automatic(c)
    }

    /// Coordinator `c` is paused for a while: its clients notice after a
    /// keep-alive and move on.
    pub(super) fn pause(&mut self, c: usize) {
        if self.paused(c) {
            return;
        }
        self.report.pauses += 1;
        let length = self.rng.random_range(100..1500);
        self.coordinators[c].paused_until = self.now + length;
        for process in 0..self.processes.len() {
            if let Some(conn) = self.processes[process].conn
                && self.conn_coordinator.get(&conn) == Some(&c)
            {
                self.keepalive(process, conn);
            }
        }
    }

    /// The client on `conn` checks its coordinator after a keep-alive.
    pub(super) fn keepalive(&mut self, process: usize, conn: u64) {
        self.after(KEEPALIVE, Event::Stalled { process, conn });
    }

    /// A keep-alive timed out: if the coordinator is still paused, the
    /// client gives up on it and moves to the next one.
    pub(super) fn stalled(&mut self, process: usize, conn: u64) {
        let paused = self
            .conn_coordinator
            .get(&conn)
            .is_some_and(|&c| self.paused(c));
        if paused && self.processes[process].conn == Some(conn) {
            self.break_connection(process);
        }
    }

    /// Coordinator `c` restarts: a new process with a new id; memory is
    /// lost, the store is not; its old records stay behind; every live
    /// connection to it breaks.
    pub(super) fn restart(&mut self, c: usize) -> anyhow::Result<()> {
        self.report.restarts += 1;
        let generation = self.coordinators[c].generation + 1;
        self.coordinators[c] = SimCoordinator::new(c, generation)?;
        for process in 0..self.processes.len() {
            if let Some(conn) = self.processes[process].conn
                && self.conn_coordinator.get(&conn) == Some(&c)
            {
                self.processes[process].conn = None;
                self.dead.insert(conn);
                if self.processes[process].alive {
                    self.processes[process].target += 1;
                    self.after(10..80, Event::Connect(process));
                }
            }
        }
        Ok(())
    }
}
