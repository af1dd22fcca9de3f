//! The state machine of one pipeline: the installed (persisted) document and
//! the gate ledger.
//!
//! Changes to the document are *proposed*: a `propose_*` method validates a
//! request against the installed document and returns the successor
//! document without changing anything. The IO edge writes it to the store
//! with a compare-and-swap on the version it read and, only once that
//! succeeded, calls [`PipelineState::install`]. Gates are only ever sent the
//! installed document, so a horizon is durable before any gate sees it; a
//! lost compare-and-swap means another writer got there first: the edge
//! installs what the store holds and proposes again, re-validated.

use crate::compaction::{retire, retirement};
use crate::document::{PipelineDoc, UnknownFields};
use crate::domain::{Colour, Epoch, Key, PipelineName};
use crate::error::CoreError;
use crate::fleet::{ReportDigest, ServingReport, fleet_view};
use crate::gate::{GateIdentity, GateKey, GateProgress, SessionId};
use crate::horizon::next_horizon;
use crate::ledger::Ledger;
use crate::limits::{check_allowed_lateness, check_cutover_key};
use crate::operators::{Operators, merged};
use crate::status::{ColourGates, PipelineStatus, Serving};
use crate::transition::{CutoverAt, Phase, ScheduleRequest, Transition, TransitionState};

/// What installing a document changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    /// The document was newer and is now the current one.
    Advanced,
    /// The document was the current one already.
    Unchanged,
    /// The document belongs to another incarnation of the pipeline (it was
    /// deleted and created again): it replaced the installed one.
    Replaced,
}

/// One pipeline: installed document plus gate ledger, and — when other
/// coordinators serve gates of it too — their reports and the fleet view
/// (see [`crate::fleet`]).
#[derive(Clone, Debug)]
pub struct PipelineState {
    doc: PipelineDoc,
    ledger: Ledger,
    fleet: Option<Fleet>,
}

/// The other coordinators' live reports, and this coordinator's ledger with
/// them folded in; every change to the ledger is applied to the view too.
#[derive(Clone, Debug)]
struct Fleet {
    reports: Vec<ServingReport>,
    view: Ledger,
}

impl PipelineState {
    /// A pipeline whose persisted document is `doc`.
    pub fn new(doc: PipelineDoc) -> Self {
        PipelineState {
            doc,
            ledger: Ledger::default(),
            fleet: None,
        }
    }

    /// The installed document.
    pub fn doc(&self) -> &PipelineDoc {
        &self.doc
    }

    /// The pipeline's name.
    pub fn name(&self) -> &PipelineName {
        &self.doc.name
    }

    /// The gate ledger: the gates this coordinator serves.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The gates of the whole fleet: this coordinator's ledger with the
    /// other coordinators' live reports folded in (the ledger itself when
    /// there are none). Every decision reads this.
    pub fn view(&self) -> &Ledger {
        self.fleet.as_ref().map_or(&self.ledger, |f| &f.view)
    }

    /// The other coordinators' live reports (those of another incarnation
    /// are dropped): the fleet view is rebuilt from them.
    pub fn set_reports(&mut self, reports: Vec<ServingReport>) {
        let incarnation = self.doc.incarnation();
        let reports: Vec<ServingReport> = reports
            .into_iter()
            .filter(|r| r.incarnation == incarnation && r.pipeline == self.doc.name)
            .collect();
        if reports.is_empty() {
            self.fleet = None;
            return;
        }
        let view = fleet_view(
            &self.ledger,
            &self.doc.name,
            &reports.iter().collect::<Vec<_>>(),
        );
        self.fleet = Some(Fleet { reports, view });
    }

    /// The other coordinators' reports the view is built from.
    pub fn reports(&self) -> &[ServingReport] {
        self.fleet.as_ref().map_or(&[], |f| &f.reports)
    }

    /// This coordinator's report of the gates it serves.
    pub fn own_report(
        &self,
        coordinator: crate::fleet::CoordinatorId,
        sequence: u64,
    ) -> ServingReport {
        ServingReport {
            coordinator,
            pipeline: self.doc.name.clone(),
            incarnation: self.doc.incarnation(),
            sequence,
            gates: self.ledger.reported_gates(),
            unknown: UnknownFields::new(),
        }
    }

    /// What the other coordinators decide on in this one's report: rewrite
    /// the report when it changes.
    pub fn report_digest(&self) -> ReportDigest {
        let drained = self.doc.transition.as_ref().is_some_and(|t| {
            t.state == TransitionState::Pending
                && self.ledger.served_drained(t.from, t.at, t.drain_mark())
        });
        ReportDigest::of(&self.ledger, self.doc.policy.window, drained)
    }

    /// Applies a change made to the ledger to the fleet view as well (a
    /// change the view refuses — a gate it holds from a newer report — is
    /// the report's to make).
    fn mirror(&mut self, change: impl FnOnce(&mut Ledger) -> Result<(), CoreError>) {
        if let Some(fleet) = self.fleet.as_mut() {
            let _ = change(&mut fleet.view);
        }
    }

    /// Installs a document that is now in the store (written by us or seen
    /// through a watch). An older epoch is refused; the same epoch is a no-op;
    /// a document of another incarnation (the pipeline was deleted and
    /// created again) replaces the installed one.
    pub fn install(&mut self, doc: PipelineDoc) -> Result<Installed, CoreError> {
        doc.validate()?;
        if doc.epoch() == self.doc.epoch() && doc == self.doc {
            return Ok(Installed::Unchanged);
        }
        if doc.incarnation() != self.doc.incarnation() {
            self.doc = doc;
            // The other coordinators' reports were of the old incarnation.
            self.fleet = None;
            return Ok(Installed::Replaced);
        }
        self.doc.check_successor(&doc)?;
        self.doc = doc;
        Ok(Installed::Advanced)
    }

    /// Proposes a transition.
    pub fn propose_schedule(&self, request: ScheduleRequest) -> Result<PipelineDoc, CoreError> {
        check_allowed_lateness(request.allowed_lateness)?;
        if let CutoverAt::Key(key) = request.at {
            check_cutover_key(key)?;
        }
        let doc = &self.doc;
        let horizon = doc.horizon();
        if let Some(t) = &doc.transition
            && t.phase(horizon) == Phase::Scheduled
        {
            return Err(CoreError::TransitionPending { to: t.to, at: t.at });
        }
        let from = doc.active();
        if request.target == from {
            return Err(CoreError::AlreadyOwner {
                colour: request.target,
            });
        }
        let at = match request.at {
            CutoverAt::Earliest if horizon == Key::MIN => return Err(CoreError::NoHorizonYet),
            CutoverAt::Earliest => horizon,
            CutoverAt::Key(key) if key < horizon => {
                return Err(CoreError::BelowHorizon {
                    requested: key,
                    earliest: horizon,
                });
            }
            CutoverAt::Key(key) => key,
        };
        let timeline = doc.plan.timeline.with_appended(at, request.target)?;
        let mut next = doc.successor();
        if let Some(t) = next.transition.as_mut()
            && matches!(t.state, TransitionState::Pending | TransitionState::Drained)
        {
            t.state = TransitionState::Superseded;
        }
        next.archive_transition();
        next.plan.timeline = timeline;
        next.plan.mode = request.mode;
        next.segments_epoch = next.epoch();
        next.transition = Some(Transition {
            id: next.epoch(),
            from,
            to: request.target,
            at,
            mode: request.mode,
            allowed_lateness: request.allowed_lateness,
            auto_promote: request.auto_promote,
            promoted: false,
            state: TransitionState::Pending,
            unknown: UnknownFields::new(),
        });
        self.record_operators(&mut next, true);
        self.doc.check_successor(&next)?;
        Ok(next)
    }

    /// Whether this coordinator's own gates have an operator the document
    /// does not record yet, while a transition is in flight or once there
    /// is a horizon (before the first horizon the record rides along with
    /// it). Such an operator forces a write of its own, and a coordinator
    /// makes it before it sends those gates their first frame: another
    /// coordinator deciding DRAINED only counts what the document records.
    pub fn own_operators_unrecorded(&self) -> bool {
        let doc = self.doc();
        let in_flight = doc
            .transition
            .as_ref()
            .is_some_and(|t| t.state == TransitionState::Pending);
        // Only an operator the record lacks can be new: a cheap check first.
        (in_flight || doc.horizon() > Key::MIN)
            && doc.recorded_colours().into_iter().any(|colour| {
                let recorded = doc.operators.of(colour);
                !self
                    .ledger
                    .operators(colour)
                    .all(|(uid, _)| recorded.contains_key(uid))
                    && merged(recorded, &self.ledger.current_operators(colour), false).is_some()
            })
    }

    /// Records in `next` what the ledger knows of the operators of its
    /// recorded colour (see [`crate::operators`]; with `rescale`, changed
    /// parallelism too).
    fn record_operators(&self, next: &mut PipelineDoc, rescale: bool) {
        for colour in next.recorded_colours() {
            if let Some(operators) = merged(
                next.operators.of(colour),
                &self.view().current_operators(colour),
                rescale,
            ) {
                next.operators.set(colour, operators);
            }
        }
    }

    /// Proposes removing the pending transition.
    pub fn propose_abort(&self) -> Result<PipelineDoc, CoreError> {
        let doc = &self.doc;
        let Some(t) = &doc.transition else {
            return Err(CoreError::NoTransition {
                expected: "pending",
            });
        };
        match t.state {
            TransitionState::Pending if t.promoted => {
                return Err(CoreError::Promoted { at: t.at });
            }
            TransitionState::Pending if doc.horizon() <= t.at => {}
            TransitionState::Pending | TransitionState::Drained | TransitionState::Completed => {
                return Err(CoreError::Irrevocable {
                    at: t.at,
                    horizon: doc.horizon(),
                });
            }
            TransitionState::Aborted | TransitionState::Superseded => {
                return Err(CoreError::NoTransition {
                    expected: "pending",
                });
            }
        }
        let timeline = doc.plan.timeline.without_last(t.at)?;
        let mut next = doc.successor();
        next.plan.timeline = timeline;
        next.segments_epoch = next.epoch();
        if let Some(t) = next.transition.as_mut() {
            t.state = TransitionState::Aborted;
        }
        self.doc.check_successor(&next)?;
        Ok(next)
    }

    /// Proposes letting the horizon pass a cutover that waits for promotion.
    pub fn propose_promote(&self) -> Result<PipelineDoc, CoreError> {
        match &self.doc.transition {
            Some(t) if t.horizon_cap().is_some() => {}
            Some(t) if t.state == TransitionState::Pending => {
                return Err(CoreError::NotAwaitingPromotion);
            }
            _ => {
                return Err(CoreError::NoTransition {
                    expected: "pending",
                });
            }
        }
        let mut next = self.doc.successor();
        if let Some(t) = next.transition.as_mut() {
            t.promoted = true;
        }
        Ok(next)
    }

    /// Proposes closing a drained transition.
    pub fn propose_complete(&self) -> Result<PipelineDoc, CoreError> {
        let phase = match &self.doc.transition {
            Some(t) => t.phase(self.doc.horizon()),
            None => {
                return Err(CoreError::NoTransition {
                    expected: "drained",
                });
            }
        };
        if phase != Phase::Drained {
            return Err(CoreError::NotDrained { phase });
        }
        let mut next = self.doc.successor();
        if let Some(t) = next.transition.as_mut() {
            t.state = TransitionState::Completed;
            // The old job is stopped: its operators need not drain again.
            next.operators.set(t.from, Operators::new());
        }
        self.record_operators(&mut next, true);
        if let Some(retired) = retirement(&next, self.view()) {
            retire(&mut next, retired);
        }
        self.doc.check_successor(&next)?;
        Ok(next)
    }

    /// Proposes forgetting the recorded gate operator `uid` of `colour`
    /// (one that will never come back, and would keep DRAINED from coming).
    /// Refused while any of its gates is connected here; once the document
    /// is installed, [`PipelineState::forget_operator_gates`] forgets its
    /// gates.
    pub fn propose_forget_operator(
        &self,
        colour: Colour,
        uid: &str,
    ) -> Result<PipelineDoc, CoreError> {
        let recorded = self.doc.operators.of(colour).contains_key(uid);
        let known = self.view().operators(colour).any(|(known, _)| known == uid);
        if !recorded && !known {
            return Err(CoreError::UnknownOperator {
                colour,
                gate_uid: uid.chars().take(80).collect(),
            });
        }
        // Refuse before anything is written (a gate of it connected to any
        // coordinator of the fleet).
        self.view().clone().forget_operator(colour, uid)?;
        let mut next = self.doc.successor();
        let mut operators = next.operators.of(colour).clone();
        operators.remove(uid);
        next.operators.set(colour, operators);
        Ok(next)
    }

    /// Forgets the gates of operator `uid` of `colour` from the ledger
    /// (after [`PipelineState::propose_forget_operator`]'s document was
    /// installed). Refused while any of them is connected.
    pub fn forget_operator_gates(&mut self, colour: Colour, uid: &str) -> Result<(), CoreError> {
        self.ledger.forget_operator(colour, uid)?;
        self.mirror(|view| view.forget_operator(colour, uid));
        Ok(())
    }

    /// The change the pipeline wants on its own, if any: a higher horizon
    /// (from the gates' progress), marking the transition drained,
    /// retiring keys after a completed transition (see
    /// [`crate::compaction`]), and recording new gate
    /// operators (a write of its own only while a transition is in flight;
    /// otherwise they ride along with the next change).
    pub fn propose_automatic(&self) -> Option<PipelineDoc> {
        let doc = &self.doc;
        let cap = doc.transition.as_ref().and_then(Transition::horizon_cap);
        let horizon = next_horizon(
            doc.horizon(),
            doc.policy,
            self.view().horizon_signals(),
            cap,
        );
        let drained = doc.transition.as_ref().is_some_and(|t| {
            t.state == TransitionState::Pending
                && horizon.unwrap_or(doc.horizon()) > t.at
                && self
                    .view()
                    .drained(t.from, t.at, t.drain_mark(), doc.operators.of(t.from))
        });
        let retired = retirement(doc, self.view());
        let in_flight = doc
            .transition
            .as_ref()
            .is_some_and(|t| t.state == TransitionState::Pending);
        let new_operators = self.own_operators_unrecorded();
        if horizon.is_none() && !drained && retired.is_none() && !new_operators {
            return None;
        }
        let mut next = doc.successor();
        self.record_operators(&mut next, !in_flight);
        if let Some(retired) = retired {
            retire(&mut next, retired);
        }
        if let Some(horizon) = horizon {
            next.plan.horizon = horizon;
        }
        if drained && let Some(t) = next.transition.as_mut() {
            t.state = TransitionState::Drained;
        }
        Some(next)
    }

    /// Registers gates on a session. All must belong to this pipeline.
    /// `held` is the epoch the client already holds for it.
    pub fn attach(
        &mut self,
        session: SessionId,
        gates: &[GateIdentity],
        held: Epoch,
    ) -> Result<(), CoreError> {
        if let Some(gate) = gates.iter().find(|g| g.pipeline != self.doc.name) {
            return Err(CoreError::InvalidGate {
                gate: gate.key().to_string(),
                reason: format!(
                    "belongs to pipeline {}, not {}",
                    gate.pipeline, self.doc.name
                ),
            });
        }
        // A client may hold a newer epoch than ours (we are behind the
        // store); count it as acked only up to what we have.
        let held = held.min(self.doc.epoch());
        self.ledger.attach(session, gates, held)?;
        self.mirror(|view| view.attach(session, gates, held));
        Ok(())
    }

    /// Removes gates from a session.
    pub fn detach(&mut self, session: SessionId, gates: &[GateKey]) -> Result<(), CoreError> {
        self.ledger.detach(session, gates)?;
        self.mirror(|view| view.detach(session, gates));
        Ok(())
    }

    /// The session ended.
    pub fn close_session(&mut self, session: SessionId) {
        self.ledger.close_session(session);
        self.mirror(|view| {
            view.close_session(session);
            Ok(())
        });
    }

    /// The session installed `epoch`.
    pub fn ack(&mut self, session: SessionId, epoch: Epoch) -> Result<(), CoreError> {
        if epoch > self.doc.epoch() {
            return Err(CoreError::AckFromFuture {
                acked: epoch,
                current: self.doc.epoch(),
            });
        }
        self.ledger.ack(session, epoch);
        self.mirror(|view| {
            view.ack(session, epoch);
            Ok(())
        });
        Ok(())
    }

    /// A gate on the session reports progress.
    pub fn progress(
        &mut self,
        session: SessionId,
        gate: &GateKey,
        progress: GateProgress,
    ) -> Result<(), CoreError> {
        self.ledger.progress(session, gate, progress)?;
        self.mirror(|view| view.progress(session, gate, progress));
        Ok(())
    }

    /// A gate on the session holds `key` at watermark `watermark`.
    pub fn horizon_request(
        &mut self,
        session: SessionId,
        gate: &GateKey,
        key: Key,
        watermark: Key,
    ) -> Result<(), CoreError> {
        let mut progress = self
            .ledger
            .gate(gate)
            .filter(|g| g.session == Some(session))
            .map(|g| g.progress)
            .ok_or_else(|| CoreError::UnknownGate {
                gate: gate.to_string(),
            })?;
        progress.watermark = progress.watermark.max(watermark);
        progress.lowest_held = Some(progress.lowest_held.map_or(key, |l| l.min(key)));
        self.progress(session, gate, progress)
    }

    /// The status a controller or operator sees.
    pub fn status(&self) -> PipelineStatus {
        let epoch = self.doc.epoch();
        PipelineStatus {
            name: self.doc.name.clone(),
            plan: self.doc.plan.clone(),
            transition: self.doc.transition.clone(),
            phase: self.doc.phase(),
            active: self.doc.active(),
            blue: self.colour_gates(Colour::Blue, epoch),
            green: self.colour_gates(Colour::Green, epoch),
            serving: self.serving(),
        }
    }

    /// This coordinator's connected gates per colour, then each report's.
    fn serving(&self) -> Vec<Serving> {
        let own = self.ledger.gates().filter(|g| g.session.is_some());
        let count = |gates: &mut dyn Iterator<Item = Colour>| {
            gates.fold((0u32, 0u32), |(b, g), c| match c {
                Colour::Blue => (b + 1, g),
                Colour::Green => (b, g + 1),
            })
        };
        let (blue, green) = count(&mut own.map(|g| g.identity.colour));
        let mut serving = vec![Serving {
            coordinator: String::new(),
            answering: true,
            blue,
            green,
            live: true,
            renewed_ms_ago: Some(0),
        }];
        for report in self.reports() {
            let (blue, green) = count(
                &mut report
                    .gates
                    .iter()
                    .filter(|g| g.connected)
                    .map(|g| g.colour),
            );
            serving.push(Serving {
                coordinator: report.coordinator.to_string(),
                answering: false,
                blue,
                green,
                live: true,
                renewed_ms_ago: None,
            });
        }
        serving
    }

    /// The ledger's counts, expecting also the recorded operators whose
    /// gates have not connected since this coordinator started.
    fn colour_gates(&self, colour: Colour, epoch: Epoch) -> ColourGates {
        let view = self.view();
        let mut gates = view.colour_gates(colour, epoch);
        gates.expected += view.unknown_expected(colour, self.doc.operators.of(colour));
        gates
    }
}
