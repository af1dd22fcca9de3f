//! The coordinator side of the simulation: the real core on the real file
//! store, sessions, and what a coordinator sends each session.

use anyhow::{Context, bail};
use cutover_client::apply::Frame;
use cutover_coordinator::store::{CasOutcome, Version};
use cutover_core::session::resume;
use cutover_core::{
    Epoch, FrameKind, GateIdentity, HorizonPolicy, Incarnation, Key, PipelineDoc, PipelineState,
    PlanVersion, Resume, SessionId, SessionRules, SessionState, TransitionState,
};

use super::world::{Event, Session, Up, World};

impl World {
    pub(super) fn core_mut(&mut self) -> anyhow::Result<&mut (PipelineState, Version)> {
        if self.core.is_none()
            && let Some(stored) = self.store.load_blocking(&self.name)?
        {
            self.core = Some((PipelineState::new(stored.doc), stored.version));
        }
        self.core.as_mut().context("no pipeline yet")
    }

    /// Writes `doc` with a compare-and-swap, installs and publishes it.
    pub(super) fn write(&mut self, doc: PipelineDoc) -> anyhow::Result<()> {
        let version = self.core_mut()?.1.clone();
        match self
            .store
            .compare_and_swap_blocking(&self.name, Some(&version), &doc)?
        {
            CasOutcome::Written(version) => {
                self.check_drained(&doc)?;
                let core = self.core_mut()?;
                core.0.install(doc)?;
                core.1 = version;
                self.publish();
                Ok(())
            }
            CasOutcome::Conflict(_) => bail!("compare-and-swap lost with a single writer"),
        }
    }

    /// The oracle for DRAINED: when a document declares it, every gate of
    /// the old colour's running job has decided, for good, every record it
    /// owns below the cutover: none is still to be read (at or after its
    /// position, which a failover would restore) or held — whatever the
    /// coordinator's ledger knew. Records that arrive late are outside the
    /// guarantee.
    fn check_drained(&mut self, doc: &PipelineDoc) -> anyhow::Result<()> {
        let Some(t) = &doc.transition else {
            return Ok(());
        };
        let was_pending = self
            .core_mut()?
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
                        "DRAINED at t={} while {} of {} (watermark {}) has {unread:?} still to read and {holding:?} held below the cutover {}",
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

    /// Sends every session the frame its client needs for the current
    /// document, as the core's session rules decide.
    fn publish(&mut self) {
        let Some((core, _)) = &self.core else { return };
        let doc = core.doc().clone();
        let version = PlanVersion::of(&doc);
        let mut frames = Vec::new();
        for session in self.sessions.values_mut() {
            if let Some(kind) = session.state.send(&self.name, version) {
                frames.push((session.conn, session.process, frame(kind, &doc)));
            }
        }
        for (conn, process, frame) in frames {
            self.send_down(conn, process, frame);
        }
    }

    fn automatic(&mut self) -> anyhow::Result<()> {
        if let Some(doc) = self.core_mut()?.0.propose_automatic() {
            self.write(doc)?;
        }
        Ok(())
    }

    pub(super) fn coordinator_receives(&mut self, conn: u64, message: Up) -> anyhow::Result<()> {
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
        match message {
            Up::Hello { .. } => unreachable!("handled above"),
            Up::Ack(epoch) => {
                let rules = &self.sessions[&session].state;
                rules.ack(&self.name, epoch)?;
                self.core_mut()?.0.ack(session, epoch)?
            }
            Up::Progress(gate, progress) => {
                let key = self.gates[gate].identity.key();
                // A progress report of an attempt the session no longer
                // carries (the job failed over meanwhile) is refused; the
                // client's next session reports again.
                if self.core_mut()?.0.progress(session, &key, progress).is_ok() {
                    self.automatic()?;
                }
            }
            Up::HorizonRequest(gate, k, watermark) => {
                let key = self.gates[gate].identity.key();
                if self
                    .core_mut()?
                    .0
                    .horizon_request(session, &key, k, watermark)
                    .is_ok()
                {
                    self.automatic()?;
                }
            }
        }
        Ok(())
    }

    fn hello(
        &mut self,
        conn: u64,
        gates: Vec<usize>,
        held: Option<(Epoch, Incarnation)>,
    ) -> anyhow::Result<()> {
        let identities: Vec<GateIdentity> = gates
            .iter()
            .map(|&g| self.gates[g].identity.clone())
            .collect();
        if self.core.is_none() && self.store.load_blocking(&self.name)?.is_none() {
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
                self.core = Some((PipelineState::new(doc), version));
            }
        }
        let session = SessionId(self.next_session);
        self.next_session += 1;
        let process = self.gates[gates[0]].process;
        let doc = self.core_mut()?.0.doc().clone();
        let mut state = SessionState::new(SessionRules::default());
        state.hello()?;
        state.check_attach(identities.len())?;
        // The stored document is the newest: a claim ahead of it never was.
        let held = match resume(held, PlanVersion::of(&doc)) {
            Resume::Holds(epoch) => epoch,
            Resume::Ahead => bail!("a client holds an epoch above every epoch stored"),
        };
        if self
            .core_mut()?
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
        let version = PlanVersion::of(&doc);
        state.joined(&self.name, identities.len(), held, version);
        let first = state.send(&self.name, version);
        self.sessions.insert(
            session,
            Session {
                conn,
                process,
                state,
            },
        );
        self.conn_session.insert(conn, session);
        if let Some(kind) = first {
            self.send_down(conn, process, frame(kind, &doc));
        }
        Ok(())
    }

    pub(super) fn close_session(&mut self, conn: u64) {
        self.dead.insert(conn);
        if let Some(session) = self.conn_session.remove(&conn) {
            self.sessions.remove(&session);
            if let Some((core, _)) = self.core.as_mut() {
                core.close_session(session);
            }
        }
    }

    /// The coordinator restarts: memory is lost, the store is not; every
    /// live connection breaks.
    pub(super) fn restart(&mut self) {
        self.report.restarts += 1;
        self.core = None;
        self.sessions.clear();
        self.dead.extend(self.conn_session.keys().copied());
        self.conn_session.clear();
        for process in 0..self.processes.len() {
            if let Some(conn) = self.processes[process].conn.take() {
                self.dead.insert(conn);
                if self.processes[process].alive {
                    self.after(10..80, Event::Connect(process));
                }
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
