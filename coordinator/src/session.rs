//! One gate session: a client process's bidirectional stream.
//!
//! Delivery semantics: per pipeline the session reads a latest-value `watch`
//! of pre-encoded frames. While the client is slow to read, newer frames
//! replace older ones in `pending` (one slot per pipeline, so memory does
//! not grow) and the skip is counted; other sessions are never slowed down.
//! A protocol violation ends the stream with a status; everything the
//! session registered is released when it ends (see [`SessionGuard`]).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use cutover_core::{Epoch, GateIdentity, GateKey, Incarnation, Key, PipelineName, SessionId};
use cutover_proto::convert::{gate_identity_from, gate_ref_from, pipeline_from, progress_from};
use cutover_proto::v1::{self, client_message::Kind};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::WatchStream;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use crate::error::CoordinatorError;
use crate::published::{Held, Published};
use crate::registry::{Coordinator, PipelineCell};

/// Frames going out to the client.
pub type Outbound = mpsc::Sender<Result<Bytes, Status>>;

struct Joined {
    cell: Arc<PipelineCell>,
    gates: usize,
    /// What the client holds, as far as we know.
    held: Held,
    /// Highest epoch sent or known held: acks above it are refused.
    sent: Epoch,
}

/// Releases a session's registrations and gauges when dropped.
struct SessionGuard {
    coordinator: Coordinator,
    id: SessionId,
    joined: HashMap<PipelineName, Joined>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        for joined in self.joined.values() {
            self.coordinator
                .close_session(self.id, &joined.cell, joined.gates);
        }
        self.coordinator.metrics().sessions.dec();
    }
}

/// Runs a session until the client leaves, breaks the protocol, or the
/// coordinator shuts down.
pub async fn run(
    coordinator: Coordinator,
    mut inbound: Streaming<v1::ClientMessage>,
    out: Outbound,
) {
    let id = coordinator.next_session_id();
    coordinator.metrics().sessions.inc();
    let mut guard = SessionGuard {
        coordinator: coordinator.clone(),
        id,
        joined: HashMap::new(),
    };
    let mut subscriptions: StreamMap<PipelineName, WatchStream<Arc<Published>>> = StreamMap::new();
    let mut pending: HashMap<PipelineName, Arc<Published>> = HashMap::new();

    let end = match inbound.message().await {
        Ok(Some(v1::ClientMessage {
            kind: Some(Kind::Hello(hello)),
        })) => {
            info!(session = id.0, client = %hello.client_name, gates = hello.gates.len(), "session opened");
            attach(&mut guard, &mut subscriptions, &hello.gates, &hello.held)
                .await
                .err()
        }
        Ok(Some(_)) => Some(CoordinatorError::Protocol(
            "the first message must be a hello".into(),
        )),
        Ok(None) => return,
        // A message that could not be decoded (malformed, oversized).
        Err(status) => {
            let _ = out.send(Err(status)).await;
            return;
        }
    };
    if let Some(error) = end {
        return refuse(&coordinator, &out, error).await;
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
                if let Some(joined) = guard.joined.get_mut(&name)
                    && let Some(frame) = published.frame_for(joined.held)
                {
                    permit.send(Ok(frame.clone()));
                    let replaced = joined.held.is_some_and(|(i, _, _)| i != published.incarnation);
                    joined.held = published.held();
                    joined.sent = if replaced { published.epoch } else { joined.sent.max(published.epoch) };
                    coordinator.metrics().frames_sent.inc();
                }
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
                if guard.joined.get(&name).is_some_and(|j| j.cell.is_retired()) {
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
    subscriptions: &mut StreamMap<PipelineName, WatchStream<Arc<Published>>>,
    pending: &mut HashMap<PipelineName, Arc<Published>>,
    message: v1::ClientMessage,
) -> Result<(), CoordinatorError> {
    let coordinator = guard.coordinator.clone();
    let id = guard.id;
    match message.kind {
        None => Err(CoordinatorError::Protocol("empty message".into())),
        Some(Kind::Hello(_)) => Err(CoordinatorError::Protocol("hello sent twice".into())),
        Some(Kind::Attach(attach_gates)) => {
            attach(
                guard,
                subscriptions,
                &attach_gates.gates,
                &attach_gates.held,
            )
            .await
        }
        Some(Kind::Detach(detach)) => {
            let mut by_pipeline: HashMap<PipelineName, Vec<GateKey>> = HashMap::new();
            for gate in &detach.gates {
                let (pipeline, key) = gate_ref_from(Some(gate))?;
                by_pipeline.entry(pipeline).or_default().push(key);
            }
            for (pipeline, keys) in by_pipeline {
                let joined = joined(guard, &pipeline)?;
                coordinator.detach(id, &joined.cell, &keys)?;
                joined.gates -= keys.len();
                if joined.gates == 0 {
                    guard.joined.remove(&pipeline);
                    subscriptions.remove(&pipeline);
                    pending.remove(&pipeline);
                }
            }
            Ok(())
        }
        Some(Kind::Ack(ack)) => {
            let pipeline = pipeline_from(&ack.pipeline)?;
            // Clients stop acknowledging a pipeline once they detached its
            // last gate from the session.
            let Some(joined) = guard.joined.get_mut(&pipeline) else {
                return Err(CoordinatorError::AckWithoutGate { pipeline });
            };
            if ack.epoch > joined.sent.0 {
                return Err(CoordinatorError::AckNeverSent {
                    pipeline,
                    acked: ack.epoch,
                    sent: joined.sent.0,
                });
            }
            coordinator.ack(id, &joined.cell, Epoch(ack.epoch))
        }
        Some(Kind::Progress(progress)) => {
            for gate in &progress.gates {
                let (pipeline, key) = gate_ref_from(gate.gate.as_ref())?;
                let joined = joined(guard, &pipeline)?;
                coordinator.progress(id, &joined.cell, &key, progress_from(gate))?;
            }
            Ok(())
        }
        Some(Kind::HorizonRequest(request)) => {
            let (pipeline, key) = gate_ref_from(request.gate.as_ref())?;
            let joined = joined(guard, &pipeline)?;
            coordinator.horizon_request(
                id,
                &joined.cell,
                &key,
                Key(request.key),
                Key(request.watermark),
            )
        }
    }
}

fn joined<'a>(
    guard: &'a mut SessionGuard,
    pipeline: &PipelineName,
) -> Result<&'a mut Joined, CoordinatorError> {
    guard
        .joined
        .get_mut(pipeline)
        .ok_or_else(|| CoordinatorError::NotOnSession {
            pipeline: pipeline.clone(),
        })
}

/// Registers gates, pipeline by pipeline; all are validated before any is
/// registered.
async fn attach(
    guard: &mut SessionGuard,
    subscriptions: &mut StreamMap<PipelineName, WatchStream<Arc<Published>>>,
    gates: &[v1::GateIdentity],
    held: &[v1::HeldEpoch],
) -> Result<(), CoordinatorError> {
    let coordinator = guard.coordinator.clone();
    let carried: usize = guard.joined.values().map(|j| j.gates).sum();
    let limit = coordinator.config().max_gates_per_session;
    if carried + gates.len() > limit {
        return Err(CoordinatorError::Protocol(format!(
            "a session may carry at most {limit} gates ({carried} registered, {} more asked)",
            gates.len()
        )));
    }
    let mut by_pipeline: HashMap<PipelineName, Vec<GateIdentity>> = HashMap::new();
    for gate in gates {
        let identity = gate_identity_from(gate)?;
        by_pipeline
            .entry(identity.pipeline.clone())
            .or_default()
            .push(identity);
    }
    let mut held_by_pipeline: HashMap<PipelineName, (Epoch, Incarnation)> = HashMap::new();
    for h in held {
        held_by_pipeline.insert(
            pipeline_from(&h.pipeline)?,
            (Epoch(h.epoch), Incarnation(h.incarnation)),
        );
    }
    for (pipeline, identities) in by_pipeline {
        let held = held_by_pipeline
            .get(&pipeline)
            .copied()
            .unwrap_or((Epoch(0), Incarnation(0)));
        let (cell, held) = coordinator
            .attach(guard.id, &pipeline, &identities, held)
            .await?;
        let doc = cell.doc();
        let entry = guard
            .joined
            .entry(pipeline.clone())
            .or_insert_with(|| Joined {
                cell: cell.clone(),
                gates: 0,
                held: None,
                sent: held.min(doc.epoch()),
            });
        entry.gates += identities.len();
        if held == doc.epoch() && entry.held.is_none() {
            // Resumed at the current epoch: nothing to send until it changes.
            entry.held = Some((doc.incarnation(), doc.epoch(), doc.segments_epoch));
        }
        if !subscriptions.contains_key(&pipeline) {
            subscriptions.insert(pipeline, WatchStream::new(cell.subscribe()));
        }
    }
    Ok(())
}
