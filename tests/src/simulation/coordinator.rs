//! The coordinator side of the simulation: one or more coordinators, each
//! the real core on the real file store with its own sessions, writing
//! through compare-and-swap (so they race) and learning what the others
//! wrote by reading the store; what each sends its sessions, as the core's
//! session rules decide.

use anyhow::{Context, bail};
use cutover_client::apply::Frame;
use cutover_coordinator::store::{CasOutcome, Stored, Version};
use cutover_core::fleet::{CoordinatorId, Liveness, ReportDigest};
use cutover_core::session::resume;
use cutover_core::{
    CoreError, Epoch, FrameKind, GateIdentity, HorizonPolicy, Incarnation, Installed, Key,
    PipelineDoc, PipelineState, PlanVersion, Resume, SessionId, SessionRules, SessionState,
    TransitionState,
};
use std::collections::BTreeMap;

use super::world::{Event, Session, Up, World};

/// Time-to-live of another coordinator's report (virtual ms).
pub(super) const TTL: u64 = 150;

/// One coordinator process.
pub(super) struct SimCoordinator {
    pub id: CoordinatorId,
    pub core: Option<(PipelineState, Version)>,
    pub sessions: BTreeMap<SessionId, Session>,
    pub conn_session: BTreeMap<u64, SessionId>,
    pub next_session: u64,
    /// Paused (SIGSTOP) until this time.
    pub paused_until: u64,
    pub renewal: u64,
    pub sequence: u64,
    pub published: Option<ReportDigest>,
    pub liveness: Liveness,
    pub generation: u32,
}

impl SimCoordinator {
    pub(super) fn new(index: usize, generation: u32) -> anyhow::Result<Self> {
        Ok(SimCoordinator {
            id: CoordinatorId::new(format!("c{index}-g{generation}"))?,
            core: None,
            sessions: BTreeMap::new(),
            conn_session: BTreeMap::new(),
            next_session: 1,
            paused_until: 0,
            renewal: 0,
            sequence: 0,
            published: None,
            liveness: Liveness::new(TTL),
            generation,
        })
    }
}

impl World {
    pub(super) fn paused(&self, c: usize) -> bool {
        self.now < self.coordinators[c].paused_until
    }

    pub(super) fn core_mut(&mut self, c: usize) -> anyhow::Result<&mut (PipelineState, Version)> {
        if self.coordinators[c].core.is_none()
            && let Some(stored) = self.store.load_blocking(&self.name)?
        {
            self.coordinators[c].core = Some((PipelineState::new(stored.doc), stored.version));
        }
        self.coordinators[c]
            .core
            .as_mut()
            .context("no pipeline yet")
    }

    /// Writes `doc` through coordinator `c` with a compare-and-swap on the
    /// version it holds, installs and publishes it. A lost compare-and-swap
    /// installs what is stored instead; returns whether `doc` was written.
    pub(super) fn write(&mut self, c: usize, doc: PipelineDoc) -> anyhow::Result<bool> {
        let version = self.core_mut(c)?.1.clone();
        match self
            .store
            .compare_and_swap_blocking(&self.name, Some(&version), &doc)?
        {
            CasOutcome::Written(version) => {
                self.check_drained(c, &doc)?;
                self.install(c, Stored { version, doc })?;
                Ok(true)
            }
            CasOutcome::Conflict(Some(stored)) => {
                self.report.lost_writes += 1;
                self.install(c, *stored)?;
                Ok(false)
            }
            CasOutcome::Conflict(None) => bail!("the pipeline vanished from the store"),
        }
    }

    /// Proposes with `propose` on coordinator `c` and writes it, proposing
    /// again on what is stored after a lost compare-and-swap (as the real
    /// coordinator does). `Ok(None)`: refused or nothing to write.
    pub(super) fn write_proposal(
        &mut self,
        c: usize,
        propose: impl Fn(&PipelineState) -> Result<PipelineDoc, CoreError>,
    ) -> anyhow::Result<Option<PipelineDoc>> {
        for _ in 0..4 {
            let Ok(next) = propose(&self.core_mut(c)?.0) else {
                return Ok(None);
            };
            if self.write(c, next.clone())? {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// Installs a stored document in coordinator `c` and sends its sessions
    /// what they need.
    fn install(&mut self, c: usize, stored: Stored) -> anyhow::Result<()> {
        let core = self.core_mut(c)?;
        if core.0.install(stored.doc)? != Installed::Unchanged || core.1 != stored.version {
            core.1 = stored.version;
            self.publish(c);
        }
        Ok(())
    }

    /// Coordinator `c` reads the store (its watch): a newer document is
    /// installed.
    pub(super) fn sync(&mut self, c: usize) -> anyhow::Result<()> {
        let Some(stored) = self.store.load_blocking(&self.name)? else {
            return Ok(());
        };
        let Some((core, _)) = self.coordinators[c].core.as_ref() else {
            return Ok(());
        };
        let installed = core.doc();
        if installed.incarnation() != stored.doc.incarnation()
            || installed.epoch() < stored.doc.epoch()
        {
            self.install(c, stored)?;
        }
        Ok(())
    }

    /// The oracle for DRAINED: when a document declares it, every gate of
    /// the old colour's running job has decided, for good, every record it
    /// owns below the cutover: none is still to be read (at or after its
    /// position, which a failover would restore) or held — whatever the
    /// coordinators' ledgers and reports knew. Records that arrive late
    /// are outside the guarantee.
    fn check_drained(&mut self, c: usize, doc: &PipelineDoc) -> anyhow::Result<()> {
        let Some(t) = &doc.transition else {
            return Ok(());
        };
        let was_pending = self
            .core_mut(c)?
            .0
            .doc()
            .transition
            .as_ref()
            .is_some_and(|old| old.id == t.id && old.state == TransitionState::Pending);
        if !(was_pending && t.state == TransitionState::Drained) {
            return Ok(());
        }
        for job in self
            .jobs
            .iter()
            .filter(|j| j.colour == t.from && j.running())
        {
            for g in job.gates.iter().map(|&g| &self.gates[g]) {
                // A record behind the gate's watermark arrives late.
                let unread = g.records[g.position..].iter().find(|&&(id, ts)| {
                    Key(ts) < t.at && Key(ts) >= g.watermark && !self.oracle.is_late(id)
                });
                let holding = g.held.iter().map(|h| h.key).filter(|&k| k < t.at).min();
                if unread.is_some() || holding.is_some() {
                    bail!(
                        "DRAINED by {} at t={} while {} of {} (watermark {}) has {unread:?} still to read and {holding:?} held below the cutover {}",
                        self.coordinators[c].id,
                        self.now,
                        g.identity.key(),
                        g.identity.job_id,
                        g.watermark,
                        t.at
                    );
                }
            }
        }
        Ok(())
    }

    /// Sends every session of coordinator `c` the frame its client needs
    /// for the installed document, as the core's session rules decide.
    fn publish(&mut self, c: usize) {
        let coordinator = &mut self.coordinators[c];
        let Some((core, _)) = &coordinator.core else {
            return;
        };
        let doc = core.doc().clone();
        let version = PlanVersion::of(&doc);
        let mut frames = Vec::new();
        for session in coordinator.sessions.values_mut() {
            if let Some(kind) = session.state.send(&self.name, version) {
                frames.push((session.conn, session.process, frame(kind, &doc)));
            }
        }
        for (conn, process, frame) in frames {
            self.send_down(conn, process, frame);
        }
    }

    pub(super) fn automatic(&mut self, c: usize) -> anyhow::Result<()> {
        if let Some(doc) = self.core_mut(c)?.0.propose_automatic() {
            self.write(c, doc)?;
        }
        Ok(())
    }

    pub(super) fn coordinator_receives(&mut self, conn: u64, message: Up) -> anyhow::Result<()> {
        if self.dead.contains(&conn) {
            return Ok(());
        }
        let Some(&c) = self.conn_coordinator.get(&conn) else {
            return Ok(());
        };
        if self.paused(c) {
            // A paused process reads its socket when it wakes up.
            let at = self.coordinators[c].paused_until;
            self.at(at, Event::Up { conn, message });
            return Ok(());
        }
        if let Up::Hello { gates, held } = message {
            return self.hello(c, conn, gates, held);
        }
        let Some(&session) = self.coordinators[c].conn_session.get(&conn) else {
            return Ok(());
        };
        if !self.coordinators[c].sessions.contains_key(&session) {
            return Ok(());
        }
        match message {
            Up::Hello { .. } => unreachable!("handled above"),
            Up::Ack(epoch) => {
                let rules = &self.coordinators[c].sessions[&session].state;
                rules.ack(&self.name, epoch)?;
                self.core_mut(c)?.0.ack(session, epoch)?
            }
            Up::Progress(gate, progress) => {
                let key = self.gates[gate].identity.key();
                // A progress report of an attempt the session no longer
                // carries (the job failed over meanwhile) is refused; the
                // client's next session reports again.
                if self
                    .core_mut(c)?
                    .0
                    .progress(session, &key, progress)
                    .is_ok()
                {
                    self.automatic(c)?;
                }
            }
            Up::HorizonRequest(gate, k, watermark) => {
                let key = self.gates[gate].identity.key();
                if self
                    .core_mut(c)?
                    .0
                    .horizon_request(session, &key, k, watermark)
                    .is_ok()
                {
                    self.automatic(c)?;
                }
            }
        }
        Ok(())
    }

    fn hello(
        &mut self,
        c: usize,
        conn: u64,
        gates: Vec<usize>,
        held: Option<(Epoch, Incarnation)>,
    ) -> anyhow::Result<()> {
        let identities: Vec<GateIdentity> = gates
            .iter()
            .map(|&g| self.gates[g].identity.clone())
            .collect();
        if self.coordinators[c].core.is_none() && self.store.load_blocking(&self.name)?.is_none() {
            let doc = PipelineDoc::new(
                self.name.clone(),
                identities[0].colour,
                HorizonPolicy::with_window(100),
                Incarnation(1 + self.report.events),
            );
            if let CasOutcome::Written(version) = self
                .store
                .compare_and_swap_blocking(&self.name, None, &doc)?
            {
                self.coordinators[c].core = Some((PipelineState::new(doc), version));
            }
        }
        // A hello makes the coordinator look at the store (a client may
        // hold an epoch this coordinator has not read yet).
        self.core_mut(c)?;
        self.sync(c)?;
        let coordinator = &mut self.coordinators[c];
        let session = SessionId(coordinator.next_session);
        coordinator.next_session += 1;
        let process = self.gates[gates[0]].process;
        let doc = self.core_mut(c)?.0.doc().clone();
        let mut state = SessionState::new(SessionRules::default());
        state.hello()?;
        state.check_attach(identities.len())?;
        // The coordinator read the store above: a claim ahead of it never
        // was.
        let held = match resume(held, PlanVersion::of(&doc)) {
            Resume::Holds(epoch) => epoch,
            Resume::Ahead => bail!("a client holds an epoch above every epoch stored"),
        };
        if self
            .core_mut(c)?
            .0
            .attach(session, &identities, held)
            .is_err()
        {
            // A stale session still holds these gates: the client retries.
            self.report.refused_hellos += 1;
            if self.processes[process].conn == Some(conn) {
                self.processes[process].conn = None;
                self.after(20..60, Event::Connect(process));
            }
            return Ok(());
        }
        for identity in &identities {
            self.heard_of
                .insert((identity.job_id.clone(), identity.gate_uid.clone()));
        }
        // Operators the document does not record yet are written before the
        // session's first frame (the coordinator's session waits for it):
        // every other coordinator's DRAINED decision then counts them.
        for _ in 0..4 {
            let Some(next) = self.core_mut(c)?.0.propose_automatic() else {
                break;
            };
            if self.write(c, next)? {
                break;
            }
        }
        let doc = self.core_mut(c)?.0.doc().clone();
        let version = PlanVersion::of(&doc);
        state.joined(&self.name, identities.len(), held, version);
        let first = state.send(&self.name, version);
        let coordinator = &mut self.coordinators[c];
        coordinator.sessions.insert(
            session,
            Session {
                conn,
                process,
                state,
            },
        );
        coordinator.conn_session.insert(conn, session);
        if let Some(kind) = first {
            self.send_down(conn, process, frame(kind, &doc));
        }
        Ok(())
    }

    pub(super) fn close_session(&mut self, conn: u64) {
        self.dead.insert(conn);
        let Some(&c) = self.conn_coordinator.get(&conn) else {
            return;
        };
        let coordinator = &mut self.coordinators[c];
        if let Some(session) = coordinator.conn_session.remove(&conn) {
            coordinator.sessions.remove(&session);
            if let Some((core, _)) = coordinator.core.as_mut() {
                core.close_session(session);
            }
        }
    }
}

/// The frame of `kind` for `doc`, as a client receives it.
fn frame(kind: FrameKind, doc: &PipelineDoc) -> Frame {
    match kind {
        FrameKind::Snapshot => Frame::Snapshot(doc.plan.clone()),
        FrameKind::Grant => Frame::Grant {
            epoch: doc.epoch(),
            horizon: doc.horizon(),
            segments_epoch: doc.segments_epoch,
            incarnation: doc.incarnation(),
        },
    }
}
