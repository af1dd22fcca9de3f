//! The simulated controller: what a FlinkBlueGreenDeployment controller and
//! an operator do to a pipeline — schedule transitions (starting the target
//! colour's job from a savepoint of the running one when it has none),
//! promote, abort (cancelling a job started for the aborted transition),
//! stop the old job with a savepoint at DRAINED and complete — and the
//! failovers Flink makes on its own. Each request goes to one coordinator
//! that answers (a paused one does not), which proposes on what it holds
//! and, after a lost compare-and-swap, on what is stored.

use cutover_core::{CutoverAt, Key, Phase, PipelineDoc, PipelineState, ScheduleRequest};
use rand::Rng;

use super::world::{Event, World};

impl World {
    pub(super) fn control(&mut self) -> anyhow::Result<()> {
        let answering: Vec<usize> = (0..self.coordinators.len())
            .filter(|&c| !self.paused(c))
            .collect();
        if answering.is_empty() || self.store.load_blocking(&self.name)?.is_none() {
            self.after(20..60, Event::Control);
            return Ok(());
        }
        let c = answering[self.rng.random_range(0..answering.len())];
        self.core_mut(c)?;
        self.sync(c)?;
        let doc = self.core_mut(c)?.0.doc().clone();
        let read_all = self
            .jobs
            .iter()
            .filter(|j| j.running())
            .all(|j| j.gates.iter().all(|&g| self.gates[g].read_all()));
        if doc.phase() == Some(Phase::Drained) {
            self.stop_and_complete(c, &doc)?;
        } else if read_all {
            // The input is over: let a cutover waiting for promotion pass.
            self.write_proposal(c, PipelineState::propose_promote)?;
        } else {
            match self.rng.random_range(0..9) {
                0..=2 => self.schedule(c)?,
                3 => {
                    self.write_proposal(c, PipelineState::propose_promote)?;
                }
                4 => self.abort(c)?,
                5 | 6 => {
                    let running: Vec<usize> = (0..self.jobs.len())
                        .filter(|&j| self.jobs[j].running())
                        .collect();
                    if !running.is_empty() {
                        let job = running[self.rng.random_range(0..running.len())];
                        self.after(0..50, Event::Failover(job));
                    }
                }
                _ => {}
            }
        }
        let next = if read_all { 30..60 } else { 100..1200 };
        self.after(next, Event::Control);
        // Connections break now and then; the coordinator notices late.
        if self.rng.random_bool(0.3) {
            let process = self.rng.random_range(0..self.processes.len());
            self.after(0..200, Event::Break(process));
        }
        Ok(())
    }

    /// DRAINED: stop the old colour's job with a savepoint, then complete;
    /// often the new job fails over soon after (to a checkpoint that may lie
    /// before the cutover).
    fn stop_and_complete(&mut self, c: usize, doc: &PipelineDoc) -> anyhow::Result<()> {
        let Some(t) = doc.transition.clone() else {
            return Ok(());
        };
        if let Some(old) = self.running_job(t.from) {
            self.stop(old);
        }
        if self
            .write_proposal(c, PipelineState::propose_complete)?
            .is_none()
        {
            return Ok(()); // the next control request completes it
        }
        self.report.completed += 1;
        if self.rng.random_bool(0.5)
            && let Some(new) = self.running_job(t.to)
        {
            self.report.failovers_after_completion += 1;
            self.after(0..150, Event::Failover(new));
        }
        Ok(())
    }

    /// Schedules a transition to the colour that does not own the end of
    /// the timeline, starting its job first if it has none.
    fn schedule(&mut self, c: usize) -> anyhow::Result<()> {
        let doc = self.core_mut(c)?.0.doc().clone();
        let target = doc.active().other();
        let Some(source) = self.running_job(doc.active()) else {
            return Ok(()); // the active job is stopping; nothing to start from
        };
        // A transition away from a job waits until each of its gate
        // operators reached some coordinator: an operator none of whose
        // gates got through is unknown to every coordinator, and its held
        // records would not hold DRAINED back (the README's limits).
        if !self.jobs[source].gates.iter().all(|&g| {
            let identity = &self.gates[g].identity;
            self.heard_of
                .contains(&(identity.job_id.clone(), identity.gate_uid.clone()))
        }) {
            return Ok(());
        }
        let started = match self.running_job(target) {
            Some(_) => None,
            None if self.may_start(target) => Some(self.start_job(target, Some(source))?),
            None => return Ok(()),
        };
        let request = ScheduleRequest {
            target,
            at: if self.rng.random_bool(0.5) {
                CutoverAt::Earliest
            } else {
                let offset = self.rng.random_range(0..400);
                CutoverAt::Key(doc.horizon().max(Key(0)).saturating_add(offset))
            },
            mode: self.mode,
            allowed_lateness: self.rng.random_range(0..50),
            auto_promote: self.rng.random_bool(0.6),
        };
        if let Some(next) = self.write_proposal(c, |core| core.propose_schedule(request))? {
            let id = next.transition.as_ref().map(|t| t.id.0);
            self.report.scheduled += 1;
            if let Some(job) = started {
                self.jobs[job].started_for = id;
            }
        }
        Ok(())
    }

    /// Aborts the pending transition; the job started for it is cancelled
    /// (the controller deletes the new colour).
    fn abort(&mut self, c: usize) -> anyhow::Result<()> {
        let Some(next) = self.write_proposal(c, PipelineState::propose_abort)? else {
            return Ok(());
        };
        let id = next.transition.as_ref().map(|t| t.id.0);
        self.report.aborted += 1;
        if let Some(job) = (0..self.jobs.len()).find(|&j| {
            self.jobs[j].running()
                && self.jobs[j].started_for.is_some()
                && self.jobs[j].started_for == id
        }) {
            self.cancel(job);
        }
        Ok(())
    }
}
