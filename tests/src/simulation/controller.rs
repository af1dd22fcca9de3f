//! The simulated controller: what a FlinkBlueGreenDeployment controller and
//! an operator do to a pipeline — schedule transitions (starting the target
//! colour's job from a savepoint of the running one when it has none),
//! promote, abort (cancelling a job started for the aborted transition),
//! stop the old job with a savepoint at DRAINED and complete — and the
//! failovers Flink makes on its own.

use cutover_core::{CutoverAt, Key, Phase, PipelineDoc, ScheduleRequest};
use rand::Rng;

use super::world::{Event, World};

impl World {
    pub(super) fn control(&mut self) -> anyhow::Result<()> {
        if self.core.is_none() && self.store.load_blocking(&self.name)?.is_none() {
            self.after(20..60, Event::Control);
            return Ok(());
        }
        let doc = self.core_mut()?.0.doc().clone();
        let read_all = self
            .jobs
            .iter()
            .filter(|j| j.running())
            .all(|j| j.gates.iter().all(|&g| self.gates[g].read_all()));
        if doc.phase() == Some(Phase::Drained) {
            self.stop_and_complete(&doc)?;
        } else if read_all {
            // The input is over: let a cutover waiting for promotion pass.
            if let Ok(next) = self.core_mut()?.0.propose_promote() {
                self.write(next)?;
            }
        } else {
            match self.rng.random_range(0..9) {
                0..=2 => self.schedule()?,
                3 => {
                    if let Ok(next) = self.core_mut()?.0.propose_promote() {
                        self.write(next)?;
                    }
                }
                4 => self.abort()?,
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
    fn stop_and_complete(&mut self, doc: &PipelineDoc) -> anyhow::Result<()> {
        let Some(t) = doc.transition.clone() else {
            return Ok(());
        };
        if let Some(old) = self.running_job(t.from) {
            self.stop(old);
        }
        let next = self.core_mut()?.0.propose_complete()?;
        self.write(next)?;
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
    fn schedule(&mut self) -> anyhow::Result<()> {
        let doc = self.core_mut()?.0.doc().clone();
        let target = doc.active().other();
        let Some(source) = self.running_job(doc.active()) else {
            return Ok(()); // the active job is stopping; nothing to start from
        };
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
        if let Ok(next) = self.core_mut()?.0.propose_schedule(request) {
            let id = next.transition.as_ref().map(|t| t.id.0);
            self.write(next)?;
            self.report.scheduled += 1;
            if let Some(job) = started {
                self.jobs[job].started_for = id;
            }
        }
        Ok(())
    }

    /// Aborts the pending transition; the job started for it is cancelled
    /// (the controller deletes the new colour).
    fn abort(&mut self) -> anyhow::Result<()> {
        let Ok(next) = self.core_mut()?.0.propose_abort() else {
            return Ok(());
        };
        let id = next.transition.as_ref().map(|t| t.id.0);
        self.write(next)?;
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
