//! One gate session: a client process's bidirectional stream. The rules —
//! what the session may say, what its client holds, which frame it needs —
//! are the core's [`SessionState`]; this task decodes, calls them, and
//! writes what they decide.
//!
//! Delivery semantics: per pipeline the session reads a latest-value `watch`
//! of pre-encoded frames. While the client is slow to read, newer frames
//! replace older ones in `pending` (one slot per pipeline, so memory does
//! not grow) and the skip is counted; other sessions are never slowed down.
//! A protocol violation ends the stream with a status; everything the
//! session registered is released when it ends (see [`SessionGuard`]).

use crate::auth::policy::Action;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use cutover_core::{
    Epoch, FrameKind, GateIdentity, GateKey, Incarnation, Key, PipelineName, SessionError,
    SessionId, SessionRules, SessionState,
};
use cutover_proto::convert::{gate_identity_from, gate_ref_from, pipeline_from, progress_from};
use cutover_proto::v1::{self, client_message::Kind};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::WatchStream;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use crate::error::CoordinatorError;
use crate::published::Published;
use crate::registry::{Coordinator, PipelineCell};

/// Frames going out to the client.
pub type Outbound = mpsc::Sender<Result<Bytes, Status>>;

type Subscriptions = StreamMap<PipelineName, WatchStream<Arc<Published>>>;

/// The session's rules and registrations; releases them when dropped.
struct SessionGuard {
    coordinator: Coordinator,
    /// Who opened the session (its client certificate's identity).
    identity: Option<String>,
    id: SessionId,
    state: SessionState,
    cells: HashMap<PipelineName, Arc<PipelineCell>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        for (pipeline, gates) in self.state.pipelines() {
            if let Some(cell) = self.cells.get(pipeline) {
                self.coordinator.close_session(self.id, cell, gates);
            }
        }
        self.coordinator.metrics().sessions.dec();
    }
}

impl SessionGuard {
    fn cell(&self, pipeline: &PipelineName) -> Result<&Arc<PipelineCell>, CoordinatorError> {
        self.state.require(pipeline)?;
        self.cells
            .get(pipeline)
            .ok_or_else(|| SessionError::NotOnSession {
                pipeline: pipeline.clone(),
            })
            .map_err(CoordinatorError::from)
    }
}

/// Runs a session until the client leaves, breaks the protocol, or the
/// coordinator shuts down.
pub async fn run(
    coordinator: Coordinator,
    identity: Option<String>,
    mut inbound: Streaming<v1::ClientMessage>,
    out: Outbound,
) {
    let id = coordinator.next_session_id();
    coordinator.metrics().sessions.inc();
    let rules = SessionRules {
        max_gates: coordinator.config().max_gates_per_session,
    };
    let mut guard = SessionGuard {
        coordinator: coordinator.clone(),
        identity,
        id,
        state: SessionState::new(rules),
        cells: HashMap::new(),
    };
    let mut subscriptions = Subscriptions::new();
    let mut pending: HashMap<PipelineName, Arc<Published>> = HashMap::new();

    // A session that never says Hello holds a stream and a task for
    // nothing: it gets a bounded time to.
    let first = coordinator.config().first_message_timeout;
    match tokio::time::timeout(first, inbound.message()).await {
        Ok(Ok(Some(message))) => {
            if let Err(error) = handle(&mut guard, &mut subscriptions, &mut pending, message).await
            {
                return refuse(&coordinator, &out, error).await;
            }
        }
        Ok(Ok(None)) => return,
        Ok(Err(status)) => {
            let _ = out.send(Err(status)).await;
            return;
        }
        Err(_) => {
            coordinator.metrics().session_errors.inc();
            let _ = out
                .send(Err(Status::deadline_exceeded(format!(
                    "no Hello within {first:?}; the session is closed"
                ))))
                .await;
            return;
        }
    }

    loop {
        tokio::select! {
            biased;
            _ = coordinator.stopped() => {
                let _ = out.send(Err(Status::unavailable("coordinator shutting down; reconnect"))).await;
                return;
            }
            permit = out.reserve(), if !pending.is_empty() => {
                let Ok(permit) = permit else { return };
                let Some(name) = pending.keys().next().cloned() else { continue };
                let Some(published) = pending.remove(&name) else { continue };
                let frame = match guard.state.send(&name, published.version) {
                    Some(FrameKind::Snapshot) => &published.snapshot,
                    Some(FrameKind::Grant) => &published.grant,
                    None => continue,
                };
                permit.send(Ok(frame.clone()));
                coordinator.metrics().frames_sent.inc();
            }
            message = inbound.message() => {
                let message = match message {
                    Ok(Some(message)) => message,
                    Ok(None) => { debug!(session = id.0, "client closed the session"); return }
                    Err(status) => {
                        debug!(session = id.0, %status, "session stream failed");
                        // Tell the client why, if it still listens.
                        let _ = out.send(Err(status)).await;
                        return;
                    }
                };
                if let Err(error) = handle(&mut guard, &mut subscriptions, &mut pending, message).await {
                    return refuse(&coordinator, &out, error).await;
                }
            }
            Some((name, published)) = subscriptions.next() => {
                if guard.cells.get(&name).is_some_and(|c| c.is_retired()) {
                    // Deleted while this session carried gates of it: the
                    // client reconnects and finds whatever comes next.
                    let _ = out.send(Err(Status::unavailable(format!(
                        "pipeline {name} was deleted; reconnect"
                    )))).await;
                    return;
                }
                if pending.insert(name, published).is_some() {
                    coordinator.metrics().updates_coalesced.inc();
                }
            }
        }
    }
}

async fn refuse(coordinator: &Coordinator, out: &Outbound, error: CoordinatorError) {
    warn!(%error, "ending session");
    coordinator.metrics().session_errors.inc();
    let _ = out.send(Err(error.into())).await;
}

async fn handle(
    guard: &mut SessionGuard,
    subscriptions: &mut Subscriptions,
    pending: &mut HashMap<PipelineName, Arc<Published>>,
    message: v1::ClientMessage,
) -> Result<(), CoordinatorError> {
    let coordinator = guard.coordinator.clone();
    let id = guard.id;
    let Some(kind) = message.kind else {
        guard.state.message()?;
        return Err(SessionError::Empty.into());
    };
    if let Kind::Hello(hello) = kind {
        guard.state.hello()?;
        info!(session = id.0, client = %hello.client_name, gates = hello.gates.len(), "session opened");
        return attach(guard, subscriptions, &hello.gates, &hello.held).await;
    }
    guard.state.message()?;
    match kind {
        Kind::Hello(_) => unreachable!("handled above"),
        Kind::Attach(attach_gates) => {
            attach(
                guard,
                subscriptions,
                &attach_gates.gates,
                &attach_gates.held,
            )
            .await
        }
        Kind::Detach(detach) => {
            let mut by_pipeline: HashMap<PipelineName, Vec<GateKey>> = HashMap::new();
            for gate in &detach.gates {
                let (pipeline, key) = gate_ref_from(Some(gate))?;
                by_pipeline.entry(pipeline).or_default().push(key);
            }
            for (pipeline, keys) in by_pipeline {
                let cell = guard.cell(&pipeline)?.clone();
                coordinator.detach(id, &cell, &keys)?;
                if guard.state.detached(&pipeline, keys.len())? {
                    guard.cells.remove(&pipeline);
                    subscriptions.remove(&pipeline);
                    pending.remove(&pipeline);
                }
            }
            Ok(())
        }
        Kind::Ack(ack) => {
            let pipeline = pipeline_from(&ack.pipeline)?;
            let epoch = Epoch(ack.epoch);
            guard.state.ack(&pipeline, epoch)?;
            let cell = guard.cell(&pipeline)?;
            coordinator.ack(id, cell, epoch)
        }
        Kind::Progress(progress) => {
            for gate in &progress.gates {
                let (pipeline, key) = gate_ref_from(gate.gate.as_ref())?;
                let cell = guard.cell(&pipeline)?;
                coordinator.progress(id, cell, &key, progress_from(gate))?;
            }
            Ok(())
        }
        Kind::HorizonRequest(request) => {
            let (pipeline, key) = gate_ref_from(request.gate.as_ref())?;
            let cell = guard.cell(&pipeline)?;
            coordinator.horizon_request(id, cell, &key, Key(request.key), Key(request.watermark))
        }
    }
}

/// Registers gates, pipeline by pipeline; all are validated before any is
/// registered.
async fn attach(
    guard: &mut SessionGuard,
    subscriptions: &mut Subscriptions,
    gates: &[v1::GateIdentity],
    held: &[v1::HeldEpoch],
) -> Result<(), CoordinatorError> {
    let coordinator = guard.coordinator.clone();
    guard.state.check_attach(gates.len())?;
    let mut by_pipeline: HashMap<PipelineName, Vec<GateIdentity>> = HashMap::new();
    for gate in gates {
        let identity = gate_identity_from(gate)?;
        // With a policy, each gate needs a grant for its pipeline and
        // colour; a refused one registers nothing of this message.
        if let Some(authoriser) = &coordinator.config().authoriser {
            authoriser
                .check(
                    guard.identity.as_deref(),
                    Action::RegisterGate(identity.colour),
                    identity.pipeline.as_str(),
                )
                .map_err(CoordinatorError::Refused)?;
        }
        by_pipeline
            .entry(identity.pipeline.clone())
            .or_default()
            .push(identity);
    }
    let mut claims: HashMap<PipelineName, (Epoch, Incarnation)> = HashMap::new();
    for h in held {
        claims.insert(
            pipeline_from(&h.pipeline)?,
            (Epoch(h.epoch), Incarnation(h.incarnation)),
        );
    }
    for (pipeline, identities) in by_pipeline {
        let claim = claims.get(&pipeline).copied();
        let (cell, held) = coordinator
            .attach(guard.id, &pipeline, &identities, claim)
            .await?;
        guard
            .state
            .joined(&pipeline, identities.len(), held, cell.version());
        if !subscriptions.contains_key(&pipeline) {
            subscriptions.insert(pipeline.clone(), WatchStream::new(cell.subscribe()));
        }
        guard.cells.insert(pipeline, cell);
    }
    Ok(())
}
