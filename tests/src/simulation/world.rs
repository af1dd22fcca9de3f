//! The simulated world: a virtual clock, an event queue, the client
//! processes with the plans they hold, and the run's end. The coordinator
//! side, the jobs' lifecycle and the controller add their own `impl World`
//! blocks in sibling modules.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use cutover_client::apply::{Applied, Frame, apply};
use cutover_coordinator::store::FileStore;
use cutover_core::fleet::{CoordinatorId, ServingReport};
use cutover_core::{
    Colour, Decision, Epoch, GateProgress, Incarnation, Key, Mode, PipelineName, Plan, SessionState,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::coordinator::SimCoordinator;
use super::jobs::{Job, SimGate};
use super::oracle::Oracle;
use super::{Flavour, SimReport};

/// Watermark out-of-orderness bound of the stream.
pub(super) const BOUND: i64 = 40;
const MAX_EVENTS: u64 = 3_000_000;
/// The key of the far-future record (about 32 years of milliseconds).
const FAR: i64 = 1_000_000_000_000;

/// A message from a client process to the coordinator.
#[derive(Debug)]
pub(super) enum Up {
    Hello {
        gates: Vec<usize>,
        held: Option<(Epoch, Incarnation)>,
    },
    Ack(Epoch),
    Progress(usize, GateProgress),
    HorizonRequest(usize, Key, Key),
}

#[derive(Debug)]
pub(super) enum Event {
    Up {
        conn: u64,
        message: Up,
    },
    Down {
        conn: u64,
        frame: Frame,
    },
    Step(usize),
    Connect(usize),
    Break(usize),
    Noticed(u64),
    Restart(usize),
    Renew(usize),
    Pause(usize),
    /// A client's keep-alive on `conn` times out if its coordinator is
    /// still paused.
    Stalled {
        process: usize,
        conn: u64,
    },
    Control,
    Checkpoint(usize),
    CheckpointComplete {
        job: usize,
        k: usize,
    },
    Failover(usize),
}

/// A client process: some gates of one job, one connection to one of the
/// coordinators (`target`, modulo their number; the next one after a
/// broken connection).
pub(super) struct Process {
    pub gates: Vec<usize>,
    pub plan: Option<Arc<Plan>>,
    pub conn: Option<u64>,
    pub target: usize,
    pub last_down: u64,
    /// False once its job stopped: it never connects again.
    pub alive: bool,
}

/// A session as the coordinator keeps it: its connection, its client
/// process, and the core's session rules.
pub(super) struct Session {
    pub conn: u64,
    pub process: usize,
    pub state: SessionState,
}

/// The whole simulated world.
pub struct World {
    pub(super) rng: StdRng,
    pub(super) now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Event>>,
    pub(super) mode: Mode,
    pub(super) name: PipelineName,
    pub(super) store: FileStore,
    pub(super) coordinators: Vec<SimCoordinator>,
    /// The coordinator each connection goes to.
    pub(super) conn_coordinator: BTreeMap<u64, usize>,
    /// The store's fleet records: reports and liveness counters.
    pub(super) fleet_reports: BTreeMap<CoordinatorId, ServingReport>,
    pub(super) renewals: BTreeMap<CoordinatorId, u64>,
    pub(super) next_conn: u64,
    pub(super) processes: Vec<Process>,
    pub(super) gates: Vec<SimGate>,
    pub(super) jobs: Vec<Job>,
    pub(super) stream: Vec<(u32, i64)>,
    conn_up_last: BTreeMap<u64, u64>,
    /// Connections whose end the coordinator noticed.
    pub(super) dead: BTreeSet<u64>,
    /// Gate operators of each job (job id, gate uid) some coordinator
    /// accepted a gate of: the ones the protocol can know exist.
    pub(super) heard_of: BTreeSet<(String, String)>,
    pub(super) oracle: Oracle,
    pub(super) report: SimReport,
}

impl World {
    /// A world for `seed`: the stream, GREEN's first job, BLUE's started
    /// later from GREEN's savepoint, control requests, coordinator restarts.
    pub fn new(seed: u64, mode: Mode, dir: &Path, flavour: Flavour) -> anyhow::Result<World> {
        let mut rng = StdRng::seed_from_u64(seed);
        let records = rng.random_range(150..500usize);
        let mut stream: Vec<(u32, i64)> = (0..records as u32)
            .map(|id| {
                (
                    id,
                    i64::from(id) * 10 + rng.random_range(-BOUND / 2..=BOUND / 2),
                )
            })
            .collect();
        if flavour.far_future {
            let at = rng.random_range(records / 4..records * 3 / 4);
            stream[at].1 = FAR;
        }
        let name = PipelineName::new(format!("sim-{seed}"))?;
        let store = FileStore::open(dir)?.without_fsync();
        let mut world = World {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            mode,
            name,
            store,
            coordinators: (0..flavour.coordinators.max(1))
                .map(|c| SimCoordinator::new(c, 0))
                .collect::<anyhow::Result<_>>()?,
            conn_coordinator: BTreeMap::new(),
            fleet_reports: BTreeMap::new(),
            renewals: BTreeMap::new(),
            next_conn: 1,
            processes: Vec::new(),
            gates: Vec::new(),
            jobs: Vec::new(),
            stream,
            conn_up_last: BTreeMap::new(),
            dead: BTreeSet::new(),
            heard_of: BTreeSet::new(),
            oracle: Oracle::new(records, mode == Mode::EventTime),
            report: SimReport {
                records,
                ..SimReport::default()
            },
        };
        let green = world.start_job(Colour::Green, None)?;
        if flavour.reborn {
            // The processes kept the plan of a deleted incarnation, at a
            // later epoch than anything the new one starts with.
            let mut old = Plan::new(Colour::Blue, Incarnation(0xdead));
            old.epoch = Epoch(50);
            let old = Arc::new(old);
            for p in &world.jobs[green].processes {
                world.processes[*p].plan = Some(old.clone());
            }
        }
        let blue_start = world.rng.random_range(50..1500);
        world.at(blue_start, Event::Control);
        for _ in 0..world.rng.random_range(3..10) {
            let t = world.rng.random_range(50..3000);
            world.at(t, Event::Control);
        }
        let coordinators = world.coordinators.len();
        for c in 0..coordinators {
            let t = world.rng.random_range(0..50);
            world.at(t, Event::Renew(c));
        }
        for _ in 0..world.rng.random_range(0..4) {
            let t = world.rng.random_range(100..3000);
            let c = world.rng.random_range(0..coordinators);
            world.at(t, Event::Restart(c));
        }
        if coordinators > 1 {
            for _ in 0..world.rng.random_range(0..4) {
                let t = world.rng.random_range(100..3000);
                let c = world.rng.random_range(0..coordinators);
                world.at(t, Event::Pause(c));
            }
        }
        Ok(world)
    }

    pub(super) fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.events.push(Some(event));
        self.queue
            .push(Reverse((time, self.seq, self.events.len() - 1)));
    }

    pub(super) fn after(&mut self, delay: std::ops::Range<u64>, event: Event) {
        let t = self.now + self.rng.random_range(delay);
        self.at(t, event);
    }

    pub(super) fn send_up(&mut self, process: usize, message: Up) {
        let Some(conn) = self.processes[process].conn else {
            return;
        };
        let t = (self.now + self.rng.random_range(0..15))
            .max(*self.conn_up_last.get(&conn).unwrap_or(&0));
        self.conn_up_last.insert(conn, t);
        self.at(t, Event::Up { conn, message });
    }

    pub(super) fn send_down(&mut self, conn: u64, process: usize, frame: Frame) {
        let t = (self.now + self.rng.random_range(0..15)).max(self.processes[process].last_down);
        self.processes[process].last_down = t;
        self.at(t, Event::Down { conn, frame });
    }

    /// Every running job read and decided everything (and committed it).
    fn done(&self) -> bool {
        self.jobs.iter().all(|j| !j.running())
    }

    /// Runs until every job is done.
    pub fn run(&mut self) -> anyhow::Result<()> {
        while let Some(Reverse((time, _, index))) = self.queue.pop() {
            self.now = time;
            self.report.events += 1;
            ensure!(
                self.report.events < MAX_EVENTS,
                "no progress after {MAX_EVENTS} events: {}",
                self.describe()
            );
            let event = self.events[index].take().context("event consumed twice")?;
            match event {
                Event::Step(gate) => self.step(gate)?,
                Event::Connect(process) => self.connect(process),
                Event::Break(process) => self.break_connection(process),
                Event::Noticed(conn) => self.close_session(conn),
                Event::Restart(c) => self.restart(c)?,
                Event::Renew(c) => self.renew(c)?,
                Event::Pause(c) => self.pause(c),
                Event::Stalled { process, conn } => self.stalled(process, conn),
                Event::Control => self.control()?,
                Event::Up { conn, message } => self.coordinator_receives(conn, message)?,
                Event::Down { conn, frame } => self.client_receives(conn, frame)?,
                Event::Checkpoint(job) => self.checkpoint(job),
                Event::CheckpointComplete { job, k } => self.checkpoint_complete(job, k),
                Event::Failover(job) => self.failover(job),
            }
            if self.done() {
                return Ok(());
            }
        }
        bail!("the world ran out of events before every job was done")
    }

    pub(super) fn describe(&self) -> String {
        let doc = self
            .coordinators
            .iter()
            .find_map(|c| c.core.as_ref())
            .map(|(c, _)| {
                format!(
                    "{:?} {:?} {:?}",
                    c.doc().plan,
                    c.doc().transition,
                    c.ledger()
                        .gates()
                        .map(|g| (
                            g.identity.key().to_string(),
                            g.identity.job_id.clone(),
                            g.session,
                            g.progress.watermark,
                            g.progress.lowest_held,
                            g.progress.checkpointed
                        ))
                        .collect::<Vec<_>>()
                )
            });
        let gates: Vec<String> = self
            .gates
            .iter()
            .filter(|g| self.jobs[g.job].running())
            .map(|g| {
                format!(
                    "{} {}[{}] pos {}/{} held {:?} wm {} plan {:?}",
                    g.identity.job_id,
                    g.identity.gate_uid,
                    g.identity.subtask_index,
                    g.position,
                    g.records.len(),
                    g.held.iter().map(|h| h.key).min(),
                    g.watermark,
                    self.processes[g.process]
                        .plan
                        .as_ref()
                        .map(|p| (p.epoch, p.horizon))
                )
            })
            .collect();
        format!("doc {doc:?}\ngates {gates:#?}")
    }

    // ---- client side -----------------------------------------------------

    pub(super) fn connect(&mut self, process: usize) {
        let p = &self.processes[process];
        if p.conn.is_some() || !p.alive {
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.report.connections += 1;
        self.processes[process].conn = Some(conn);
        let c = self.processes[process].target % self.coordinators.len();
        self.conn_coordinator.insert(conn, c);
        if self.paused(c) {
            self.keepalive(process, conn);
        }
        let held = self.processes[process]
            .plan
            .as_ref()
            .map(|p| (p.epoch, p.incarnation));
        let gates = self.processes[process].gates.clone();
        self.send_up(
            process,
            Up::Hello {
                gates: gates.clone(),
                held,
            },
        );
        // As the real client does, a new session reports every gate at
        // once (a coordinator that restarted knows nothing of them).
        for gate in gates {
            self.report_progress(gate);
        }
    }

    /// The connection breaks: the coordinator notices later; the client
    /// reconnects to the next coordinator.
    pub(super) fn break_connection(&mut self, process: usize) {
        if let Some(conn) = self.processes[process].conn.take() {
            self.after(0..300, Event::Noticed(conn));
            if self.processes[process].alive {
                self.processes[process].target += 1;
                self.after(20..120, Event::Connect(process));
            }
        }
    }

    fn client_receives(&mut self, conn: u64, frame: Frame) -> anyhow::Result<()> {
        let Some(process) = self.processes.iter().position(|p| p.conn == Some(conn)) else {
            return Ok(()); // for a connection that is gone
        };
        let held = self.processes[process].plan.clone();
        match apply(held.as_deref(), frame) {
            Applied::Install(plan) => {
                if let Some(held) = &held
                    && held.incarnation == plan.incarnation
                {
                    ensure!(
                        plan.epoch > held.epoch,
                        "epoch went back from {} to {}",
                        held.epoch,
                        plan.epoch
                    );
                }
                let epoch = plan.epoch;
                self.processes[process].plan = Some(plan);
                self.send_up(process, Up::Ack(epoch));
                for gate in self.processes[process].gates.clone() {
                    self.release(gate)?;
                }
            }
            Applied::Stale => {}
            Applied::NeedSnapshot | Applied::Behind { .. } => self.break_connection(process),
        }
        Ok(())
    }

    /// Decides `key` for record `id` at gate `gate` with its process's plan.
    pub(super) fn decide(&mut self, gate: usize, key: Key, id: u32) -> anyhow::Result<Decision> {
        let g = &self.gates[gate];
        let decision = match &self.processes[g.process].plan {
            Some(plan) => plan.decide(g.identity.colour, key),
            None => Decision::Hold,
        };
        let (job, colour) = (g.job, g.identity.colour);
        self.oracle.decided(job, colour, key, decision, id)?;
        Ok(decision)
    }

    /// Retries the records `gate` holds.
    pub(super) fn release(&mut self, gate: usize) -> anyhow::Result<()> {
        let held = std::mem::take(&mut self.gates[gate].held);
        for h in held {
            match self.decide(gate, h.key, h.id)? {
                Decision::Emit => self.gates[gate].open.push(h.id),
                Decision::Drop => {}
                Decision::Hold => self.gates[gate].held.push(h),
            }
        }
        Ok(())
    }

    /// Ends the run: commits are tallied, decisions checked against the
    /// final plan.
    pub fn finish(mut self) -> anyhow::Result<SimReport> {
        let doc = self
            .store
            .load_blocking(&self.name)?
            .context("no pipeline stored")?
            .doc;
        self.report.coordinators = self.coordinators.len();
        self.report.final_epoch = doc.epoch().0;
        self.report.retired = (doc.plan.retired.blue.0, doc.plan.retired.green.0);
        self.oracle.agrees_with(&doc.plan)?;
        let (duplicates, gaps, late) = self.oracle.tally();
        self.report.duplicates = duplicates;
        self.report.gaps = gaps;
        self.report.late = late;
        self.report.decisions = self.oracle.checked;
        Ok(self.report)
    }
}
