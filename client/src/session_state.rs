//! What the session task decides, without IO: what a new session says
//! (every registered gate and the epochs held), what a frame from the
//! coordinator leads to (install, then acknowledge; or resynchronise),
//! and what each turn sends (gate changes, progress at most once per
//! interval, progress and horizon requests at once for held records, a last
//! report on close). The task in `session` only connects, reads frames,
//! sleeps until [`SessionState::deadline`] or a signal, and writes what
//! this returns.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_core::{Epoch, Incarnation, Key};
use cutover_proto::convert::{
    gate_identity_to, gate_ref_to, pipeline_from, plan_from, progress_to,
};
use cutover_proto::v1::{self, client_message::Kind, server_message};
use tracing::warn;

use crate::apply::{Applied, Frame, apply};
use crate::published::PublishedGate;
use crate::shared::{Command, GateRef, Shared};
use crate::wake::Signal;

/// The coordinator sent something the client cannot build on: reconnect
/// (the new session starts from a snapshot).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resync;

/// What one turn of the loop sends.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Turn {
    /// Messages to write, in order.
    pub(crate) send: Vec<v1::ClientMessage>,
    /// Close the session after writing them (the client is closing).
    pub(crate) close: bool,
}

/// The state of one session.
pub(crate) struct SessionState {
    /// Gates registered on this session.
    announced: HashSet<GateRef>,
    interval: Duration,
    last_report: Option<Instant>,
    /// When the next progress report goes out, if one is wanted.
    due: Option<Instant>,
}

fn message(kind: Kind) -> v1::ClientMessage {
    v1::ClientMessage { kind: Some(kind) }
}

impl SessionState {
    /// A new session at `now`, and its hello: every registered gate, the
    /// epochs held. Gate changes queued before are covered by it; every
    /// gate reports at once.
    pub(crate) fn open(shared: &Shared, now: Instant) -> (SessionState, v1::ClientMessage) {
        // Taken before the registry is read: a change queued after this is
        // handled by the next turn (an attach of a gate in the hello, or a
        // detach of one not in it, is then skipped).
        drop(shared.take_commands());
        let gates = shared.registered();
        for gate in &gates {
            gate.mark_changed();
        }
        let hello = v1::Hello {
            client_name: shared.config().client_name.clone(),
            gates: gates
                .iter()
                .map(|g| gate_identity_to(g.identity()))
                .collect(),
            held: held(shared),
        };
        let state = SessionState {
            announced: gates.iter().map(|g| gate_ref(g)).collect(),
            interval: shared.config().progress_interval,
            last_report: None,
            due: Some(now),
        };
        (state, message(Kind::Hello(hello)))
    }

    /// When the task must take a turn even without a signal.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.due
    }

    /// One turn at `now`: the signals raised since the last turn, then the
    /// progress report if it is due.
    pub(crate) fn turn(&mut self, shared: &Shared, now: Instant) -> Turn {
        let signals = shared.take_signals();
        let mut send = Vec::new();
        if signals.has(Signal::Stop) {
            send.push(message(Kind::Progress(self.progress(shared, true))));
            return Turn { send, close: true };
        }
        if signals.has(Signal::Commands) {
            for command in shared.take_commands() {
                send.extend(self.command(shared, command).map(message));
            }
            if !send.is_empty() {
                // Newly announced gates report their progress soon.
                self.want_report(now);
            }
        }
        if signals.has(Signal::Changed) {
            self.want_report(now);
        }
        if signals.has(Signal::Urgent) {
            self.report(shared, &mut send);
            send.extend(
                self.horizon_requests(shared)
                    .into_iter()
                    .map(|r| message(Kind::HorizonRequest(r))),
            );
        }
        if self.due.is_some_and(|due| due <= now) {
            self.due = None;
            self.last_report = Some(now);
            self.report(shared, &mut send);
        }
        Turn { send, close: false }
    }

    /// What a frame from the coordinator leads to: the ack to send (the
    /// plan was installed), nothing, or a resynchronisation. A frame for a
    /// pipeline with no gate announced on this session (its last gate was
    /// detached while the frame was under way) is installed but not
    /// acknowledged: the coordinator refuses acks for pipelines not on the
    /// session.
    pub(crate) fn on_frame(
        &self,
        shared: &Shared,
        frame: v1::ServerMessage,
    ) -> Result<Option<v1::ClientMessage>, Resync> {
        let Some(kind) = frame.kind else {
            return Ok(None);
        };
        let (pipeline, frame) = match kind {
            server_message::Kind::Snapshot(snapshot) => {
                let plan = snapshot.plan.as_ref().map(plan_from);
                match (pipeline_from(&snapshot.pipeline), plan) {
                    (Ok(pipeline), Some(Ok(plan))) => (pipeline, Frame::Snapshot(plan)),
                    _ => {
                        warn!(pipeline = %snapshot.pipeline, "coordinator sent an invalid plan; resynchronising");
                        return Err(Resync);
                    }
                }
            }
            server_message::Kind::HorizonGrant(grant) => {
                let pipeline = pipeline_from(&grant.pipeline).map_err(|_| Resync)?;
                (
                    pipeline,
                    Frame::Grant {
                        epoch: Epoch(grant.epoch),
                        horizon: Key(grant.horizon),
                        segments_epoch: Epoch(grant.segments_epoch),
                        incarnation: Incarnation(grant.incarnation),
                    },
                )
            }
        };
        let Some(slot) = shared.existing_slot(&pipeline) else {
            return Ok(None);
        };
        let held = slot.plan.load_full();
        match apply(held.as_deref(), frame) {
            Applied::Install(plan) => {
                let epoch = plan.epoch;
                slot.install(plan);
                let on_session = self.announced.iter().any(|(p, _)| *p == pipeline);
                Ok(on_session.then(|| {
                    message(Kind::Ack(v1::Ack {
                        pipeline: pipeline.to_string(),
                        epoch: epoch.0,
                    }))
                }))
            }
            Applied::Stale => Ok(None),
            Applied::NeedSnapshot => Err(Resync),
            Applied::Behind { held, offered } => {
                warn!(
                    %pipeline, %held, %offered,
                    "the coordinator sent a plan older than the one held; keeping it and reconnecting"
                );
                Err(Resync)
            }
        }
    }

    fn want_report(&mut self, now: Instant) {
        let (last, interval) = (self.last_report, self.interval);
        self.due
            .get_or_insert_with(|| last.map_or(now, |last| (last + interval).max(now)));
    }

    fn command(&mut self, shared: &Shared, command: Command) -> Option<Kind> {
        match command {
            Command::Attach(gate) => self.announced.insert(gate_ref(&gate)).then(|| {
                Kind::Attach(v1::AttachGates {
                    gates: vec![gate_identity_to(gate.identity())],
                    held: held(shared),
                })
            }),
            Command::Detach(key) => self.announced.remove(&key).then(|| {
                Kind::Detach(v1::DetachGates {
                    gates: vec![gate_ref_to(&key.0, &key.1)],
                })
            }),
        }
    }

    /// Appends a report of the gates changed since the last one, if any.
    fn report(&self, shared: &Shared, send: &mut Vec<v1::ClientMessage>) {
        let report = self.progress(shared, false);
        if !report.gates.is_empty() {
            send.push(message(Kind::Progress(report)));
        }
    }

    /// Progress of the announced gates (changed ones, or `all`); a gate
    /// registered since is reported once its attach went out, never before.
    fn progress(&self, shared: &Shared, all: bool) -> v1::Progress {
        let gates = self
            .announced_gates(shared)
            .filter(|g| g.take_changed() || all)
            .map(|g| progress_to(&g.identity().pipeline, &g.identity().key(), &g.progress()))
            .collect();
        v1::Progress { gates }
    }

    fn horizon_requests(&self, shared: &Shared) -> Vec<v1::HorizonRequest> {
        self.announced_gates(shared)
            .filter_map(|g| {
                let (lowest, watermark) = g.lowest_held()?;
                Some(v1::HorizonRequest {
                    gate: Some(gate_ref_to(&g.identity().pipeline, &g.identity().key())),
                    key: lowest.0,
                    watermark: watermark.0,
                })
            })
            .collect()
    }

    fn announced_gates(&self, shared: &Shared) -> impl Iterator<Item = Arc<PublishedGate>> {
        shared
            .registered()
            .into_iter()
            .filter(|g| self.announced.contains(&gate_ref(g)))
    }
}

fn gate_ref(gate: &PublishedGate) -> GateRef {
    (gate.identity().pipeline.clone(), gate.identity().key())
}

fn held(shared: &Shared) -> Vec<v1::HeldEpoch> {
    shared
        .held_epochs()
        .into_iter()
        .map(|(pipeline, epoch, incarnation)| v1::HeldEpoch {
            pipeline: pipeline.to_string(),
            epoch: epoch.0,
            incarnation: incarnation.0,
        })
        .collect()
}

#[cfg(test)]
#[path = "session_state_tests.rs"]
mod tests;
