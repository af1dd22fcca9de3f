//! The jobs' lifecycle in the world: starting a job (from the beginning of
//! the stream, or from a savepoint of another job), reading records,
//! checkpoints and their completion (committing the sink's transactions),
//! failover, stop with savepoint, cancel, and finishing.

use std::collections::BTreeMap;

use anyhow::Context;
use cutover_core::{Colour, Decision, Key, Mode, TransitionState};
use rand::Rng;

use super::jobs::{GateSnap, Held, Job, JobState, Shape, SimGate, Snapshot};
use super::world::{BOUND, Event, Process, Up, World};

impl World {
    /// Starts a job of `colour`: from the start of the stream, or from a
    /// savepoint of job `from` (taken now if it runs, its final one if it
    /// stopped). Returns the job's index.
    pub(super) fn start_job(
        &mut self,
        colour: Colour,
        from: Option<usize>,
    ) -> anyhow::Result<usize> {
        let (offset, held, watermark) = match from {
            None => (0, Vec::new(), Key::MIN),
            Some(source) => {
                let snap = self.savepoint_of(source)?;
                let offset = self.jobs[source]
                    .gates
                    .iter()
                    .zip(&snap.gates)
                    .map(|(&g, s)| {
                        self.gates[g]
                            .records
                            .get(s.position)
                            .map_or(u32::MAX, |r| r.0)
                    })
                    .min()
                    .unwrap_or(u32::MAX);
                // Held records read before the offset travel in the
                // savepoint's state; later ones are read again.
                let held: Vec<Held> = snap
                    .gates
                    .iter()
                    .flat_map(|s| s.held.iter().copied())
                    .filter(|h| h.id < offset)
                    .collect();
                (offset, held, snap.union_watermark())
            }
        };
        let parallelism = self.rng.random_range(1..=5u32);
        let shape = Shape {
            parallelism,
            operators: self.rng.random_range(1..=parallelism.min(2)),
            salt: self.rng.random(),
        };
        let tracks = self.rng.random_bool(0.7);
        let job = self.jobs.len();
        let job_id = format!("{colour}-{job}");
        let processes = self.rng.random_range(1..=parallelism.min(3)) as usize;
        let first_process = self.processes.len();
        for _ in 0..processes {
            self.processes.push(Process {
                gates: vec![],
                plan: None,
                conn: None,
                target: self.processes.len(),
                last_down: 0,
                alive: true,
            });
        }
        let mut gates = Vec::new();
        let mut snaps = Vec::new();
        for index in 0..parallelism {
            let process = first_process + (index as usize % processes);
            let gate = self.gates.len();
            self.processes[process].gates.push(gate);
            let records = self
                .stream
                .iter()
                .filter(|(id, _)| *id >= offset && shape.subtask_of(*id) == index)
                .copied()
                .collect();
            let mine: Vec<Held> = held
                .iter()
                .filter(|h| shape.subtask_of(h.id) == index)
                .copied()
                .collect();
            snaps.push(GateSnap {
                position: 0,
                held: mine.clone(),
                watermark,
            });
            self.gates.push(SimGate {
                identity: shape.identity(&self.name, colour, &job_id, index),
                job,
                process,
                records,
                position: 0,
                held: mine,
                max_ts: i64::MIN,
                watermark: Key::MIN,
                open: Vec::new(),
                sealed: BTreeMap::new(),
                checkpointed: tracks.then_some(watermark),
            });
            gates.push(gate);
            self.after(1..10, Event::Step(gate));
        }
        let processes: Vec<usize> = (first_process..self.processes.len()).collect();
        for &p in &processes {
            self.after(0..5, Event::Connect(p));
        }
        self.jobs.push(Job {
            colour,
            attempt: 0,
            gates,
            processes,
            tracks,
            state: JobState::Running,
            snapshots: vec![Snapshot {
                attempt: 0,
                gates: snaps,
            }],
            completed: 0,
            started_for: None,
        });
        if from.is_some() {
            self.report.jobs_started += 1;
        }
        self.after(30..300, Event::Checkpoint(job));
        Ok(job)
    }

    /// A savepoint of `job`: its state now if it runs (an intermediate
    /// savepoint commits nothing), else its last snapshot.
    fn savepoint_of(&self, job: usize) -> anyhow::Result<Snapshot> {
        let j = &self.jobs[job];
        if j.running() {
            Ok(Snapshot {
                attempt: j.attempt,
                gates: j.gates.iter().map(|&g| self.gates[g].state()).collect(),
            })
        } else {
            j.snapshots.last().cloned().context("a job has snapshots")
        }
    }

    /// Gate `gate` reads a few records, moves its watermark, releases what
    /// it can and reports.
    pub(super) fn step(&mut self, gate: usize) -> anyhow::Result<()> {
        if !self.jobs[self.gates[gate].job].running() {
            return Ok(());
        }
        let batch = self.rng.random_range(1..8);
        for _ in 0..batch {
            let g = &mut self.gates[gate];
            let Some(&(id, ts)) = g.records.get(g.position) else {
                break;
            };
            g.position += 1;
            if Key(ts) < g.watermark {
                self.oracle.late(id);
            }
            let g = &mut self.gates[gate];
            g.max_ts = g.max_ts.max(ts);
            let key = match self.mode {
                Mode::EventTime => Key(ts),
                Mode::Watermark => g.watermark,
            };
            match self.decide(gate, key, id)? {
                Decision::Emit => self.gates[gate].open.push(id),
                Decision::Drop => {}
                Decision::Hold => self.gates[gate].held.push(Held { key, id }),
            }
        }
        let g = &mut self.gates[gate];
        let read_all = g.read_all();
        if (read_all || self.rng.random_bool(0.4)) && g.max_ts > i64::MIN {
            let watermark = if read_all {
                g.max_ts
            } else {
                g.max_ts - BOUND - 1
            };
            g.watermark = g.watermark.max(Key(watermark));
        }
        self.release(gate)?;
        self.report_progress(gate);
        if self.gates[gate].done() {
            self.job_maybe_finished(self.gates[gate].job);
        } else {
            self.after(1..25, Event::Step(gate));
        }
        Ok(())
    }

    /// Sends the gate's progress (and a horizon request if it holds).
    pub(super) fn report_progress(&mut self, gate: usize) {
        let g = &self.gates[gate];
        let progress = g.progress();
        let (process, watermark) = (g.process, g.watermark);
        self.send_up(process, Up::Progress(gate, progress));
        if let Some(lowest) = progress.lowest_held {
            self.send_up(process, Up::HorizonRequest(gate, lowest, watermark));
        }
    }

    /// A job whose gates all read and decided everything takes its final
    /// checkpoint (committing the rest) and is finished.
    fn job_maybe_finished(&mut self, job: usize) {
        let j = &self.jobs[job];
        if j.running() && j.gates.iter().all(|&g| self.gates[g].done()) {
            self.final_checkpoint(job);
            self.jobs[job].state = JobState::Finished;
        }
    }

    /// Takes a checkpoint of `job` now; it completes a little later.
    pub(super) fn checkpoint(&mut self, job: usize) {
        if !self.jobs[job].running() {
            return;
        }
        let k = self.take_snapshot(job);
        self.after(5..80, Event::CheckpointComplete { job, k });
        self.after(30..300, Event::Checkpoint(job));
    }

    fn take_snapshot(&mut self, job: usize) -> usize {
        let k = self.jobs[job].snapshots.len();
        let gates: Vec<GateSnap> = self.jobs[job]
            .gates
            .clone()
            .into_iter()
            .map(|g| self.gates[g].snapshot(k))
            .collect();
        let attempt = self.jobs[job].attempt;
        self.jobs[job].snapshots.push(Snapshot { attempt, gates });
        k
    }

    /// Checkpoint `k` of `job` completed: its transactions commit, and a
    /// job that tracks checkpoints reports each gate's watermark at `k`.
    pub(super) fn checkpoint_complete(&mut self, job: usize, k: usize) {
        let j = &self.jobs[job];
        if !j.running() || k <= j.completed || j.snapshots[k].attempt != j.attempt {
            return; // aborted by a failover, or superseded
        }
        self.commit(job, k);
        self.jobs[job].completed = k;
        self.report.checkpoints += 1;
        if self.jobs[job].tracks {
            for (i, gate) in self.jobs[job].gates.clone().into_iter().enumerate() {
                // What a failover to it could decide again: held records
                // included (as the JVM gate reports it).
                let watermark = self.jobs[job].snapshots[k].gates[i].replay_floor();
                let g = &mut self.gates[gate];
                g.checkpointed = Some(g.checkpointed.map_or(watermark, |c| c.max(watermark)));
                self.report_progress(gate);
            }
        }
    }

    fn commit(&mut self, job: usize, k: usize) {
        let colour = self.jobs[job].colour;
        for gate in self.jobs[job].gates.clone() {
            for id in self.gates[gate].commit(k) {
                self.oracle.commit(id);
                self.report.emitted[usize::from(colour == Colour::Green)] += 1;
            }
        }
    }

    /// A checkpoint that completes at once (end of input, stop with
    /// savepoint): everything emitted so far commits.
    fn final_checkpoint(&mut self, job: usize) {
        let k = self.take_snapshot(job);
        self.commit(job, k);
        self.jobs[job].completed = k;
    }

    /// Every subtask of `job` restarts from its last completed checkpoint
    /// as the next attempt; uncommitted output is lost. Not for a job whose
    /// gates cannot report checkpoints while it drains (the stated limit).
    pub(super) fn failover(&mut self, job: usize) {
        if !self.jobs[job].running() || self.unprotected(job) {
            return;
        }
        self.report.failovers += 1;
        let j = &mut self.jobs[job];
        j.attempt += 1;
        let (attempt, tracks) = (j.attempt, j.tracks);
        let snapshot = j.snapshots[j.completed].clone();
        let restored = tracks.then(|| snapshot.union_watermark());
        for (i, gate) in self.jobs[job].gates.clone().into_iter().enumerate() {
            self.gates[gate].restore(&snapshot.gates[i], attempt, restored);
            self.after(5..40, Event::Step(gate));
        }
        // The tasks run again elsewhere: new connections, new attempts.
        for process in self.jobs[job].processes.clone() {
            self.break_connection(process);
            if self.processes[process].conn.is_none() {
                self.after(20..120, Event::Connect(process));
            }
        }
    }

    /// Whether `job` cannot report checkpoints and drains now (a transition
    /// from its colour is pending or drained): the coordinator takes its
    /// gates at their last watermark, which a failover would undo.
    fn unprotected(&self, job: usize) -> bool {
        let j = &self.jobs[job];
        !j.tracks
            && self
                .store
                .load_blocking(&self.name)
                .ok()
                .flatten()
                .and_then(|s| s.doc.transition)
                .is_some_and(|t| {
                    t.from == j.colour
                        && matches!(t.state, TransitionState::Pending | TransitionState::Drained)
                })
    }

    /// Stops `job` with a savepoint: its output commits, it reads nothing
    /// more, its processes leave.
    pub(super) fn stop(&mut self, job: usize) {
        if !self.jobs[job].running() {
            return;
        }
        self.final_checkpoint(job);
        self.jobs[job].state = JobState::Stopped;
        self.report.stops += 1;
        self.leave(job);
    }

    /// Cancels `job` without a savepoint: its uncommitted output is lost.
    pub(super) fn cancel(&mut self, job: usize) {
        if !self.jobs[job].running() {
            return;
        }
        self.jobs[job].state = JobState::Cancelled;
        self.leave(job);
    }

    fn leave(&mut self, job: usize) {
        // Records its gates had not read yet but whose time their watermark
        // had already passed would have arrived late: outside the guarantee.
        for &gate in &self.jobs[job].gates {
            let g = &self.gates[gate];
            for &(id, ts) in &g.records[g.position..] {
                if Key(ts) < g.watermark {
                    self.oracle.late(id);
                }
            }
        }
        for process in self.jobs[job].processes.clone() {
            self.processes[process].alive = false;
            self.break_connection(process);
        }
    }

    /// Whether a new job of `colour` may start: every earlier one was
    /// stopped through a completed transition (which retired its keys) or
    /// cancelled before it owned any. A job that finished its input while
    /// its colour still owns keys ends the lineage: a new job of that colour
    /// could emit them again.
    pub(super) fn may_start(&self, colour: Colour) -> bool {
        self.jobs
            .iter()
            .filter(|j| j.colour == colour)
            .all(|j| matches!(j.state, JobState::Stopped | JobState::Cancelled))
    }

    /// The running job of `colour`, if any.
    pub(super) fn running_job(&self, colour: Colour) -> Option<usize> {
        self.jobs
            .iter()
            .rposition(|j| j.colour == colour && j.running())
    }
}
