//! The client's background task: keeps one session to the coordinator for
//! every gate of the process, installs plans (then acknowledges them),
//! reports progress, and reconnects with jittered exponential back-off,
//! resuming from the epochs held. While disconnected, gates keep deciding
//! below the horizon they hold.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cutover_core::{Epoch, GateKey, Incarnation, Key, PipelineName};
use cutover_proto::convert::{
    gate_identity_to, gate_ref_to, pipeline_from, plan_from, progress_to,
};
use cutover_proto::v1::gate_service_client::GateServiceClient;
use cutover_proto::v1::{self, client_message::Kind, server_message};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

use crate::apply::{Applied, Frame, apply};
use crate::shared::{Command, GateShared, NONE_HELD, Shared};

/// Gates registered on the current session.
type Announced = HashSet<(PipelineName, GateKey)>;

/// How a connection ended.
enum Ended {
    /// The client is shutting down.
    Stopped,
    /// The connection failed; `served` tells whether it had been up.
    Failed { served: bool },
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let (min, max) = (shared.config.reconnect_min, shared.config.reconnect_max);
    let mut backoff = min;
    loop {
        match connection(&shared, &endpoint, &mut commands).await {
            Ended::Stopped => return,
            Ended::Failed { served } => {
                shared.connected.send_replace(false);
                if served {
                    backoff = min;
                }
                let wait = jitter(backoff);
                debug!(?wait, "reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped(&shared) => return,
                }
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

async fn stopped(shared: &Shared) {
    let mut stop = shared.stop.subscribe();
    let _ = stop.wait_for(|&s| s).await;
}

fn jitter(backoff: Duration) -> Duration {
    let factor = rand::rng().random_range(0.5..=1.0);
    backoff.mul_f64(factor)
}

fn message(kind: Kind) -> v1::ClientMessage {
    v1::ClientMessage { kind: Some(kind) }
}

async fn connection(
    shared: &Arc<Shared>,
    endpoint: &Endpoint,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Ended {
    let Ok(channel) = endpoint.connect().await else {
        return Ended::Failed { served: false };
    };
    let mut client = GateServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let (tx, rx) = mpsc::channel::<v1::ClientMessage>(64);
    let mut announced: Announced = HashSet::new();
    let gates: Vec<Arc<GateShared>> = shared.gates().values().cloned().collect();
    let hello = v1::Hello {
        client_name: shared.config.client_name.clone(),
        gates: gates
            .iter()
            .map(|g| gate_identity_to(&g.identity))
            .collect(),
        held: held(shared),
    };
    for gate in &gates {
        gate.dirty.store(true, Ordering::Relaxed);
        announced.insert((gate.identity.pipeline.clone(), gate.identity.key()));
    }
    if tx.send(message(Kind::Hello(hello))).await.is_err() {
        return Ended::Failed { served: false };
    }
    let mut inbound = match client.session(ReceiverStream::new(rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            debug!(%status, "session refused");
            return Ended::Failed { served: false };
        }
    };
    let opened = shared.sessions_opened.fetch_add(1, Ordering::Relaxed) + 1;
    info!(
        sessions_opened = opened,
        gates = gates.len(),
        "session open"
    );
    shared.connected.send_replace(true);
    // Progress goes out when some gate changed, at most once per interval;
    // the first report (every gate, marked dirty above) at once.
    let interval = shared.config.progress_interval;
    let mut last_report: Option<Instant> = None;
    let mut due = Some(Instant::now());
    loop {
        tokio::select! {
            _ = stopped(shared) => {
                let _ = tx.send(message(Kind::Progress(progress(shared, &announced, true)))).await;
                return Ended::Stopped;
            }
            frame = inbound.message() => match frame {
                Ok(Some(frame)) => {
                    if let Some(ack) = receive(shared, &announced, frame) {
                        let Ok(ack) = ack else { return Ended::Failed { served: true } };
                        if tx.send(message(Kind::Ack(ack))).await.is_err() {
                            return Ended::Failed { served: true };
                        }
                    }
                }
                Ok(None) => return Ended::Failed { served: true },
                Err(status) => {
                    warn!(code = ?status.code(), message = status.message(), "session ended by the coordinator");
                    return Ended::Failed { served: true };
                }
            },
            command = commands.recv() => {
                let Some(command) = command else { return Ended::Stopped };
                let kind = match command {
                    Command::Attach(gate) => {
                        let key = (gate.identity.pipeline.clone(), gate.identity.key());
                        if !announced.insert(key) { continue }
                        Kind::Attach(v1::AttachGates {
                            gates: vec![gate_identity_to(&gate.identity)],
                            held: held(shared),
                        })
                    }
                    Command::Detach(pipeline, key) => {
                        if !announced.remove(&(pipeline.clone(), key.clone())) { continue }
                        Kind::Detach(v1::DetachGates { gates: vec![gate_ref_to(&pipeline, &key)] })
                    }
                };
                if tx.send(message(kind)).await.is_err() {
                    return Ended::Failed { served: true };
                }
                // A newly announced gate reports its progress soon.
                due.get_or_insert_with(|| next_report(last_report, interval));
            }
            _ = shared.progress_wanted.notified(), if due.is_none() => {
                due = Some(next_report(last_report, interval));
            }
            _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                due = None;
                last_report = Some(Instant::now());
                let report = progress(shared, &announced, false);
                if !report.gates.is_empty() && tx.send(message(Kind::Progress(report))).await.is_err() {
                    return Ended::Failed { served: true };
                }
            }
            _ = shared.urgent.notified() => {
                let report = progress(shared, &announced, false);
                if !report.gates.is_empty() && tx.send(message(Kind::Progress(report))).await.is_err() {
                    return Ended::Failed { served: true };
                }
                for request in horizon_requests(shared, &announced) {
                    if tx.send(message(Kind::HorizonRequest(request))).await.is_err() {
                        return Ended::Failed { served: true };
                    }
                }
            }
        }
    }
}

/// When the next progress report may go out: one interval after the last.
fn next_report(last: Option<Instant>, interval: Duration) -> Instant {
    let now = Instant::now();
    last.map_or(now, |last| (last + interval).max(now))
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

/// Installs a frame; returns the ack to send, or `Err` to resynchronise. A
/// frame for a pipeline with no gate announced on this session (its last
/// gate was detached while the frame was under way) is installed but not
/// acknowledged: the coordinator refuses acks for pipelines not on the
/// session.
fn receive(
    shared: &Shared,
    announced: &Announced,
    frame: v1::ServerMessage,
) -> Option<Result<v1::Ack, ()>> {
    let (pipeline, frame) = match frame.kind? {
        server_message::Kind::Snapshot(snapshot) => {
            let plan = snapshot.plan.as_ref().map(plan_from);
            match (pipeline_from(&snapshot.pipeline), plan) {
                (Ok(pipeline), Some(Ok(plan))) => (pipeline, Frame::Snapshot(plan)),
                _ => {
                    warn!(pipeline = %snapshot.pipeline, "coordinator sent an invalid plan; resynchronising");
                    return Some(Err(()));
                }
            }
        }
        server_message::Kind::HorizonGrant(grant) => {
            let Ok(pipeline) = pipeline_from(&grant.pipeline) else {
                return Some(Err(()));
            };
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
    let slot = shared.existing_slot(&pipeline)?;
    let held = slot.plan.load_full();
    match apply(held.as_deref(), frame) {
        Applied::Install(plan) => {
            let epoch = plan.epoch;
            slot.install(plan);
            let on_session = announced.iter().any(|(p, _)| *p == pipeline);
            on_session.then(|| {
                Ok(v1::Ack {
                    pipeline: pipeline.to_string(),
                    epoch: epoch.0,
                })
            })
        }
        Applied::Stale => None,
        Applied::NeedSnapshot => Some(Err(())),
        Applied::Behind { held, offered } => {
            warn!(
                %pipeline, %held, %offered,
                "the coordinator sent a plan older than the one held; keeping it and reconnecting"
            );
            Some(Err(()))
        }
    }
}

/// Progress of the gates announced on this session (a gate registered since
/// is reported once its attach went out, never before).
fn progress(shared: &Shared, announced: &Announced, all: bool) -> v1::Progress {
    // Cleared before the gates are read: a change racing with this report
    // sets it again and is reported next time.
    shared.progress_pending.store(false, Ordering::SeqCst);
    let gates = shared
        .gates()
        .iter()
        .filter(|(key, _)| announced.contains(*key))
        .map(|(_, g)| g)
        .filter(|g| g.dirty.swap(false, Ordering::SeqCst) || all)
        .map(|g| progress_to(&g.identity.pipeline, &g.identity.key(), &g.progress()))
        .collect();
    v1::Progress { gates }
}

fn horizon_requests(shared: &Shared, announced: &Announced) -> Vec<v1::HorizonRequest> {
    shared
        .gates()
        .iter()
        .filter(|(key, _)| announced.contains(*key))
        .filter_map(|(_, g)| {
            let lowest = g.lowest_held.load(Ordering::Relaxed);
            (lowest != NONE_HELD).then(|| v1::HorizonRequest {
                gate: Some(gate_ref_to(&g.identity.pipeline, &g.identity.key())),
                key: lowest,
                watermark: g.watermark.load(Ordering::Relaxed),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_back_off() {
        let backoff = Duration::from_millis(400);
        let waits: Vec<Duration> = (0..1000).map(|_| jitter(backoff)).collect();
        assert!(waits.iter().all(|w| *w >= backoff / 2 && *w <= backoff));
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "jitter spreads reconnections");
    }
}
