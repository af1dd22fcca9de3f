//! A seeded, deterministic simulation of the whole protocol.
//!
//! The coordinator side is the real protocol core (`PipelineState`) on the
//! real file store; the client side applies frames with the real client
//! logic (`cutover_client::apply`). Around them a discrete-event world with
//! a virtual clock: random message delays (FIFO per connection, as on a TCP
//! stream), connections that break and are noticed late by the coordinator,
//! coordinator restarts that reload from the file store, random schedule /
//! abort / promote / complete requests, two jobs with different parallelism,
//! partitioning and one or two gate operators (sinks) replaying one
//! out-of-order stream, the new one starting late.
//!
//! Checks: installs never go back in epoch; every Emit/Drop a gate decided
//! agrees with the final plan; a document declaring DRAINED is checked
//! against the gates' true state (every old-colour gate past the drain mark
//! or at the end of its input), not the coordinator's ledger; in EVENT_TIME
//! mode every record is emitted by exactly one colour. WATERMARK mode is run
//! to measure, not to assert.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use cutover_client::apply::{Applied, Frame, apply};
use cutover_coordinator::store::{CasOutcome, FileStore, Version};
use cutover_core::{
    Colour, CutoverAt, Decision, Epoch, GateIdentity, GateProgress, HorizonPolicy, Key, Mode,
    PipelineDoc, PipelineName, PipelineState, Plan, ScheduleRequest, SessionId,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What one run measured.
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    /// Records in the stream.
    pub records: usize,
    /// Records emitted by BLUE / GREEN.
    pub emitted: [usize; 2],
    /// Extra emissions of records emitted more than once.
    pub duplicates: usize,
    /// Records emitted by neither colour.
    pub gaps: usize,
    /// Coordinator restarts.
    pub restarts: u32,
    /// Client connections opened.
    pub connections: u32,
    /// Hellos refused (a stale session still held the gate).
    pub refused_hellos: u32,
    /// Transitions scheduled / aborted / completed.
    pub scheduled: u32,
    /// Transitions aborted.
    pub aborted: u32,
    /// Transitions completed.
    pub completed: u32,
    /// Final epoch.
    pub final_epoch: u64,
    /// Final compaction floor (`i64::MIN`: never compacted).
    pub compacted_below: i64,
    /// Simulated events processed.
    pub events: u64,
}

const BOUND: i64 = 40; // watermark out-of-orderness bound
const MAX_EVENTS: u64 = 2_000_000;

enum Up {
    Hello { gates: Vec<usize>, held: Epoch },
    Ack(Epoch),
    Progress(usize, GateProgress),
    HorizonRequest(usize, Key, Key),
}

enum Event {
    Up { conn: u64, message: Up },
    Down { conn: u64, frame: Frame },
    Step(usize),
    Connect(usize),
    Break(usize),
    Noticed(u64),
    Restart,
    Control,
}

struct Process {
    gates: Vec<usize>,
    plan: Option<Arc<Plan>>,
    conn: Option<u64>,
    last_down: u64,
}

struct Gate {
    identity: GateIdentity,
    process: usize,
    records: Vec<(u32, i64)>,
    position: usize,
    held: Vec<(Key, u32)>,
    max_ts: i64,
    watermark: Key,
    emitted: Vec<u32>,
    decisions: Vec<(Key, Decision)>,
}

/// (epoch, segments epoch) a session's client holds, as far as we know.
type Held = Option<(Epoch, Epoch)>;

struct Session {
    conn: u64,
    process: usize,
    held: Held,
}

struct World {
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Event>>,
    mode: Mode,
    name: PipelineName,
    store: FileStore,
    core: Option<(PipelineState, Version)>,
    sessions: BTreeMap<SessionId, Session>,
    conn_session: BTreeMap<u64, SessionId>,
    next_conn: u64,
    next_session: u64,
    processes: Vec<Process>,
    gates: Vec<Gate>,
    conn_up_last: BTreeMap<u64, u64>,
    /// Connections whose end the coordinator noticed (a stream that ended
    /// stays ended).
    dead: std::collections::BTreeSet<u64>,
    report: SimReport,
    restarts_left: u32,
}

/// Runs one seed in `mode` with its state in `dir`.
pub fn run(seed: u64, mode: Mode, dir: &std::path::Path) -> anyhow::Result<SimReport> {
    let mut rng = StdRng::seed_from_u64(seed);
    let records = rng.random_range(150..500usize);
    let stream: Vec<(u32, i64)> = (0..records as u32)
        .map(|id| {
            (
                id,
                i64::from(id) * 10 + rng.random_range(-BOUND / 2..=BOUND / 2),
            )
        })
        .collect();
    let name = PipelineName::new(format!("sim-{seed}"))?;
    let store = FileStore::open(dir)?.without_fsync();
    let mut world = World {
        rng,
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        events: Vec::new(),
        mode,
        name: name.clone(),
        store,
        core: None,
        sessions: BTreeMap::new(),
        conn_session: BTreeMap::new(),
        next_conn: 1,
        next_session: 1,
        processes: Vec::new(),
        gates: Vec::new(),
        conn_up_last: BTreeMap::new(),
        dead: std::collections::BTreeSet::new(),
        report: SimReport {
            records,
            ..SimReport::default()
        },
        restarts_left: 0,
    };
    world.restarts_left = world.rng.random_range(0..4);
    let blue_start = world.rng.random_range(50..1500);
    for (colour, start) in [(Colour::Green, 0), (Colour::Blue, blue_start)] {
        let parallelism = world.rng.random_range(1..=5u32);
        let processes = world.rng.random_range(1..=parallelism.min(3));
        let salt: u64 = world.rng.random();
        // One or two gate operators (sinks), each with a share of the
        // subtasks: a coordinator that restarted must wait for both.
        let operators = world.rng.random_range(1..=parallelism.min(2));
        let first_process = world.processes.len();
        for _ in 0..processes {
            world.processes.push(Process {
                gates: vec![],
                plan: None,
                conn: None,
                last_down: 0,
            });
        }
        for index in 0..parallelism {
            let process = first_process + (index % processes) as usize;
            let gate = world.gates.len();
            world.processes[process].gates.push(gate);
            let mine = stream
                .iter()
                .filter(|(id, _)| {
                    (u64::from(*id).wrapping_mul(salt | 1) >> 7) % u64::from(parallelism)
                        == u64::from(index)
                })
                .copied()
                .collect();
            world.gates.push(Gate {
                identity: GateIdentity {
                    pipeline: name.clone(),
                    colour,
                    job_id: format!("{colour}"),
                    gate_uid: format!("sink-{}", index % operators),
                    subtask_index: index / operators,
                    parallelism: (parallelism - index % operators).div_ceil(operators),
                    attempt: 0,
                },
                process,
                records: mine,
                position: 0,
                held: vec![],
                max_ts: i64::MIN,
                watermark: Key::MIN,
                emitted: vec![],
                decisions: vec![],
            });
            world.at(start + 1, Event::Step(gate));
        }
        for process in first_process..world.processes.len() {
            world.at(start, Event::Connect(process));
        }
    }
    for _ in 0..world.rng.random_range(3..10) {
        let t = world.rng.random_range(50..3000);
        world.at(t, Event::Control);
    }
    for _ in 0..world.restarts_left {
        let t = world.rng.random_range(100..3000);
        world.at(t, Event::Restart);
    }
    world
        .run()
        .with_context(|| format!("seed {seed} ({mode})"))?;
    world.finish()
}

impl World {
    fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.events.push(Some(event));
        self.queue
            .push(Reverse((time, self.seq, self.events.len() - 1)));
    }

    fn after(&mut self, delay: std::ops::Range<u64>, event: Event) {
        let t = self.now + self.rng.random_range(delay);
        self.at(t, event);
    }

    fn send_up(&mut self, process: usize, message: Up) {
        let Some(conn) = self.processes[process].conn else {
            return;
        };
        let t = (self.now + self.rng.random_range(0..15))
            .max(*self.conn_up_last.get(&conn).unwrap_or(&0));
        self.conn_up_last.insert(conn, t);
        self.at(t, Event::Up { conn, message });
    }

    fn send_down(&mut self, conn: u64, process: usize, frame: Frame) {
        let t = (self.now + self.rng.random_range(0..15)).max(self.processes[process].last_down);
        self.processes[process].last_down = t;
        self.at(t, Event::Down { conn, frame });
    }

    fn describe(&self) -> String {
        let doc = self.core.as_ref().map(|(c, _)| {
            format!(
                "{:?} {:?} {:?}",
                c.doc().plan,
                c.doc().transition,
                c.ledger()
                    .gates()
                    .map(|g| (
                        g.identity.key().to_string(),
                        g.session,
                        g.progress.watermark,
                        g.progress.lowest_held
                    ))
                    .collect::<Vec<_>>()
            )
        });
        let gates: Vec<String> = self
            .gates
            .iter()
            .map(|g| {
                format!(
                    "{}[{}] pos {}/{} held {:?} wm {} plan {:?}",
                    g.identity.colour,
                    g.identity.subtask_index,
                    g.position,
                    g.records.len(),
                    g.held.iter().map(|h| h.0).min(),
                    g.watermark,
                    self.processes[g.process]
                        .plan
                        .as_ref()
                        .map(|p| (p.epoch, p.horizon))
                )
            })
            .collect();
        format!(
            "doc {doc:?}\ngates {gates:#?}\nconns {:?}",
            self.processes.iter().map(|p| p.conn).collect::<Vec<_>>()
        )
    }

    fn done(&self) -> bool {
        self.gates
            .iter()
            .all(|g| g.position == g.records.len() && g.held.is_empty())
    }

    fn run(&mut self) -> anyhow::Result<()> {
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
                Event::Restart => self.restart(),
                Event::Control => self.control()?,
                Event::Up { conn, message } => self.coordinator_receives(conn, message)?,
                Event::Down { conn, frame } => self.client_receives(conn, frame)?,
            }
            if self.done() {
                return Ok(());
            }
        }
        bail!("the world ran out of events before every record was decided")
    }

    // ---- coordinator side ----------------------------------------------

    fn core(&mut self) -> anyhow::Result<&mut (PipelineState, Version)> {
        if self.core.is_none()
            && let Some(stored) = self.store.load_blocking(&self.name)?
        {
            self.core = Some((PipelineState::new(stored.doc), stored.version));
        }
        self.core.as_mut().context("no pipeline yet")
    }

    fn write(&mut self, doc: PipelineDoc) -> anyhow::Result<bool> {
        let (_, version) = self.core()?;
        let version = version.clone();
        match self
            .store
            .compare_and_swap_blocking(&self.name, Some(&version), &doc)?
        {
            CasOutcome::Written(version) => {
                self.check_drained(&doc)?;
                let core = self.core()?;
                core.0.install(doc)?;
                core.1 = version;
                self.publish();
                Ok(true)
            }
            CasOutcome::Conflict(_) => bail!("compare-and-swap lost with a single writer"),
        }
    }

    /// The oracle for DRAINED: when a document declares it, every gate of
    /// the old colour really is past the drain mark (or has read all its
    /// input) — whatever the coordinator's ledger knew.
    fn check_drained(&mut self, doc: &PipelineDoc) -> anyhow::Result<()> {
        let Some(t) = &doc.transition else {
            return Ok(());
        };
        let was_pending = self.core()?.0.doc().transition.as_ref().is_some_and(|old| {
            old.id == t.id && old.state == cutover_core::TransitionState::Pending
        });
        if !(was_pending && t.state == cutover_core::TransitionState::Drained) {
            return Ok(());
        }
        for g in self.gates.iter().filter(|g| g.identity.colour == t.from) {
            if g.watermark < t.drain_mark() && g.position < g.records.len() {
                bail!(
                    "DRAINED at t={} while {} is at watermark {} below the mark {}",
                    self.now,
                    g.identity.key(),
                    g.watermark,
                    t.drain_mark()
                );
            }
        }
        Ok(())
    }

    fn publish(&mut self) {
        let Some((core, _)) = &self.core else { return };
        let doc = core.doc().clone();
        let targets: Vec<(SessionId, u64, usize, Held)> = self
            .sessions
            .iter()
            .map(|(id, s)| (*id, s.conn, s.process, s.held))
            .collect();
        for (id, conn, process, held) in targets {
            let frame = match held {
                Some((epoch, _)) if epoch >= doc.epoch() => continue,
                Some((_, segments)) if segments == doc.segments_epoch => Frame::Grant {
                    epoch: doc.epoch(),
                    horizon: doc.horizon(),
                    segments_epoch: doc.segments_epoch,
                    incarnation: doc.incarnation(),
                },
                _ => Frame::Snapshot(doc.plan.clone()),
            };
            if let Some(s) = self.sessions.get_mut(&id) {
                s.held = Some((doc.epoch(), doc.segments_epoch));
            }
            self.send_down(conn, process, frame);
        }
    }

    fn automatic(&mut self) -> anyhow::Result<()> {
        if let Some(doc) = self.core()?.0.propose_automatic() {
            self.write(doc)?;
        }
        Ok(())
    }

    fn coordinator_receives(&mut self, conn: u64, message: Up) -> anyhow::Result<()> {
        if self.dead.contains(&conn) {
            return Ok(());
        }
        if let Up::Hello { gates, held } = message {
            return self.hello(conn, gates, held);
        }
        let Some(&session) = self.conn_session.get(&conn) else {
            return Ok(());
        };
        if !self.sessions.contains_key(&session) {
            return Ok(());
        }
        let key = |w: &World, gate: usize| w.gates[gate].identity.key();
        match message {
            Up::Hello { .. } => unreachable!("handled above"),
            Up::Ack(epoch) => self.core()?.0.ack(session, epoch)?,
            Up::Progress(gate, progress) => {
                let k = key(self, gate);
                self.core()?.0.progress(session, &k, progress)?;
                self.automatic()?;
            }
            Up::HorizonRequest(gate, k, watermark) => {
                let g = key(self, gate);
                self.core()?.0.horizon_request(session, &g, k, watermark)?;
                self.automatic()?;
            }
        }
        Ok(())
    }

    fn hello(&mut self, conn: u64, gates: Vec<usize>, held: Epoch) -> anyhow::Result<()> {
        let identities: Vec<GateIdentity> = gates
            .iter()
            .map(|&g| self.gates[g].identity.clone())
            .collect();
        if self.core.is_none() && self.store.load_blocking(&self.name)?.is_none() {
            let doc = PipelineDoc::new(
                self.name.clone(),
                identities[0].colour,
                HorizonPolicy::with_window(100),
                cutover_core::Incarnation(1),
            );
            if let CasOutcome::Written(version) = self
                .store
                .compare_and_swap_blocking(&self.name, None, &doc)?
            {
                self.core = Some((PipelineState::new(doc), version));
            }
        }
        let session = SessionId(self.next_session);
        self.next_session += 1;
        let process = self.gates[gates[0]].process;
        if self.core()?.0.attach(session, &identities, held).is_err() {
            // A stale session still holds these gates: the client retries.
            self.report.refused_hellos += 1;
            if self.processes[process].conn == Some(conn) {
                self.processes[process].conn = None;
                self.after(20..60, Event::Connect(process));
            }
            return Ok(());
        }
        let doc = self.core()?.0.doc().clone();
        let current = held == doc.epoch();
        self.sessions.insert(
            session,
            Session {
                conn,
                process,
                held: current.then_some((doc.epoch(), doc.segments_epoch)),
            },
        );
        self.conn_session.insert(conn, session);
        if !current {
            self.sessions.get_mut(&session).context("inserted")?.held =
                Some((doc.epoch(), doc.segments_epoch));
            self.send_down(conn, process, Frame::Snapshot(doc.plan.clone()));
        }
        Ok(())
    }

    fn close_session(&mut self, conn: u64) {
        self.dead.insert(conn);
        if let Some(session) = self.conn_session.remove(&conn) {
            self.sessions.remove(&session);
            if let Some((core, _)) = self.core.as_mut() {
                core.close_session(session);
            }
        }
    }

    fn restart(&mut self) {
        self.report.restarts += 1;
        self.core = None;
        self.sessions.clear();
        self.dead.extend(self.conn_session.keys().copied());
        self.conn_session.clear();
        for process in 0..self.processes.len() {
            if let Some(conn) = self.processes[process].conn.take() {
                self.dead.insert(conn);
                self.after(10..80, Event::Connect(process));
            }
        }
    }

    fn control(&mut self) -> anyhow::Result<()> {
        if self.core.is_none() && self.store.load_blocking(&self.name)?.is_none() {
            return Ok(());
        }
        let finished = self.gates.iter().all(|g| g.position == g.records.len());
        let choice = if finished {
            3
        } else {
            self.rng.random_range(0..7)
        };
        let earliest = self.rng.random_bool(0.5);
        let offset = self.rng.random_range(0..400);
        let allowed_lateness = self.rng.random_range(0..50);
        let auto_promote = self.rng.random_bool(0.6);
        let mode = self.mode;
        let (core, _) = self.core()?;
        let proposal = match choice {
            0..=2 => {
                let at = if earliest {
                    CutoverAt::Earliest
                } else {
                    CutoverAt::Key(core.doc().horizon().max(Key(0)).saturating_add(offset))
                };
                let request = ScheduleRequest {
                    target: core.doc().active().other(),
                    at,
                    mode,
                    allowed_lateness,
                    auto_promote,
                };
                core.propose_schedule(request).map(|d| (d, "schedule"))
            }
            3 => core.propose_promote().map(|d| (d, "promote")),
            4 => core.propose_abort().map(|d| (d, "abort")),
            _ => core.propose_complete().map(|d| (d, "complete")),
        };
        if let Ok((doc, what)) = proposal {
            self.write(doc)?;
            match what {
                "schedule" => self.report.scheduled += 1,
                "abort" => self.report.aborted += 1,
                "complete" => self.report.completed += 1,
                _ => {}
            }
        }
        let next = if finished { 30..60 } else { 200..1500 };
        self.after(next, Event::Control);
        // Connections break now and then; the coordinator notices late.
        if self.rng.random_bool(0.3) {
            let process = self.rng.random_range(0..self.processes.len());
            self.after(0..200, Event::Break(process));
        }
        Ok(())
    }

    // ---- client side -----------------------------------------------------

    fn connect(&mut self, process: usize) {
        if self.processes[process].conn.is_some() {
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.report.connections += 1;
        self.processes[process].conn = Some(conn);
        let held = self.processes[process]
            .plan
            .as_ref()
            .map_or(Epoch(0), |p| p.epoch);
        let gates = self.processes[process].gates.clone();
        self.send_up(process, Up::Hello { gates, held });
    }

    fn break_connection(&mut self, process: usize) {
        if let Some(conn) = self.processes[process].conn.take() {
            self.after(0..300, Event::Noticed(conn));
            self.after(20..120, Event::Connect(process));
        }
    }

    fn client_receives(&mut self, conn: u64, frame: Frame) -> anyhow::Result<()> {
        let Some(process) = self.processes.iter().position(|p| p.conn == Some(conn)) else {
            return Ok(()); // for a connection that is gone
        };
        let held = self.processes[process].plan.clone();
        match apply(held.as_deref(), frame) {
            Applied::Install(plan) => {
                if let Some(held) = &held {
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
                    self.release(gate);
                }
            }
            Applied::Stale => {}
            Applied::NeedSnapshot | Applied::Behind { .. } => self.break_connection(process),
        }
        Ok(())
    }

    fn decide(&mut self, gate: usize, key: Key) -> Decision {
        let g = &self.gates[gate];
        let decision = match &self.processes[g.process].plan {
            Some(plan) => plan.decide(g.identity.colour, key),
            None => Decision::Hold,
        };
        if decision != Decision::Hold {
            self.gates[gate].decisions.push((key, decision));
        }
        decision
    }

    fn release(&mut self, gate: usize) {
        let held = std::mem::take(&mut self.gates[gate].held);
        for (key, id) in held {
            match self.decide(gate, key) {
                Decision::Emit => self.gates[gate].emitted.push(id),
                Decision::Drop => {}
                Decision::Hold => self.gates[gate].held.push((key, id)),
            }
        }
    }

    fn step(&mut self, gate: usize) -> anyhow::Result<()> {
        let batch = self.rng.random_range(1..8);
        for _ in 0..batch {
            let g = &mut self.gates[gate];
            let Some(&(id, ts)) = g.records.get(g.position) else {
                break;
            };
            g.position += 1;
            g.max_ts = g.max_ts.max(ts);
            let key = match self.mode {
                Mode::EventTime => Key(ts),
                Mode::Watermark => g.watermark,
            };
            match self.decide(gate, key) {
                Decision::Emit => self.gates[gate].emitted.push(id),
                Decision::Drop => {}
                Decision::Hold => self.gates[gate].held.push((key, id)),
            }
        }
        let g = &mut self.gates[gate];
        let finished = g.position == g.records.len();
        if finished || self.rng.random_bool(0.4) {
            let watermark = if finished {
                g.max_ts
            } else {
                g.max_ts - BOUND - 1
            };
            g.watermark = g.watermark.max(Key(watermark));
        }
        self.release(gate);
        let g = &self.gates[gate];
        let lowest = g.held.iter().map(|(k, _)| *k).min();
        let progress = GateProgress {
            watermark: g.watermark,
            max_key: Key(g.max_ts),
            emitted: g.emitted.len() as u64,
            dropped: 0,
            held: g.held.len() as u64,
            idle: false,
            finished,
            lowest_held: lowest,
            checkpointed: None,
        };
        let (process, watermark) = (g.process, g.watermark);
        self.send_up(process, Up::Progress(gate, progress));
        if let Some(lowest) = lowest {
            self.send_up(process, Up::HorizonRequest(gate, lowest, watermark));
        }
        if !(finished && self.gates[gate].held.is_empty()) {
            self.after(1..25, Event::Step(gate));
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<SimReport> {
        let doc = self.core()?.0.doc().clone();
        let (plan, floor) = (doc.plan.clone(), doc.compacted_below());
        self.report.final_epoch = plan.epoch.0;
        self.report.compacted_below = floor.0;
        let mut counts = vec![0usize; self.report.records];
        for gate in &self.gates {
            let colour = gate.identity.colour;
            // Below the compaction floor owners were merged; the counts
            // below still prove every record went out exactly once.
            for &(key, decision) in gate.decisions.iter().filter(|(key, _)| *key >= floor) {
                let expected = if plan.timeline.owner_of(key) == colour {
                    Decision::Emit
                } else {
                    Decision::Drop
                };
                ensure!(
                    decision == expected,
                    "{colour} gate decided {decision:?} at {key}, final plan says {expected:?}"
                );
            }
            for &id in &gate.emitted {
                counts[id as usize] += 1;
            }
            self.report.emitted[usize::from(colour == Colour::Green)] += gate.emitted.len();
        }
        self.report.duplicates = counts.iter().map(|&c| c.saturating_sub(1)).sum();
        self.report.gaps = counts.iter().filter(|&&c| c == 0).count();
        Ok(self.report)
    }
}
