//! The client's background task, the IO around [`SessionState`]: keeps one
//! session to a coordinator for every gate of the process, and reconnects
//! with jittered exponential back-off, resuming from the epochs held. With
//! several coordinators it stays on the one it has while that one answers;
//! when it cannot be reached, or a session to it ends, the next attempt
//! goes to the next one in the list. Each turn it writes what the state decides, then waits for a frame,
//! a signal or the state's deadline. While disconnected, gates keep
//! deciding below the horizon they hold.

use std::sync::Arc;
use std::time::Duration;

use cutover_proto::v1;
use cutover_proto::v1::gate_service_client::GateServiceClient;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::sleep_until;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

use crate::session_state::SessionState;
use crate::shared::Shared;

/// How a connection ended.
enum Ended {
    /// The client is shutting down.
    Stopped,
    /// The connection failed for `error`; `served` tells whether it had
    /// been up.
    Failed { served: bool, error: String },
    /// The coordinator sent a frame the client cannot build on: a new
    /// session to the same coordinator starts from a snapshot.
    Resync,
}

pub(crate) async fn run(shared: Arc<Shared>, endpoints: Vec<Endpoint>) {
    let (min, max) = (shared.config().reconnect_min, shared.config().reconnect_max);
    let mut backoff = min;
    let mut current = 0;
    loop {
        let Some(endpoint) = endpoints.get(current % endpoints.len().max(1)) else {
            return;
        };
        // A session carries gates: none registered, nothing to open. (One
        // waiter on the wake-up: a registration or the stop wakes it.)
        while shared.registered().is_empty() {
            if shared.stopping() {
                return;
            }
            shared.woken().await;
        }
        let (served, next) = match connection(&shared, endpoint).await {
            Ended::Stopped => return,
            Ended::Resync => {
                shared.set_connected(false);
                (true, false)
            }
            Ended::Failed { served, error } => {
                shared.session_failed(&endpoint.uri().to_string(), error);
                (served, true)
            }
        };
        if served {
            backoff = min;
        }
        if next {
            current = (current + 1) % endpoints.len();
        }
        let wait = jitter(backoff);
        debug!(?wait, "reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.stopped() => return,
        }
        backoff = (backoff * 2).min(max);
    }
}

fn failed(served: bool, error: &str) -> Ended {
    Ended::Failed {
        served,
        error: error.to_string(),
    }
}

/// An error with its causes (a transport error alone says only
/// "transport error").
fn describe(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        // Layers often repeat their cause's words: say each once.
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn jitter(backoff: Duration) -> Duration {
    let factor = rand::rng().random_range(0.5..=1.0);
    backoff.mul_f64(factor)
}

async fn connection(shared: &Arc<Shared>, endpoint: &Endpoint) -> Ended {
    let channel = tokio::select! {
        channel = endpoint.connect() => channel,
        _ = shared.stopped() => return Ended::Stopped,
    };
    let channel = match channel {
        Ok(channel) => channel,
        Err(e) => {
            return Ended::Failed {
                served: false,
                error: describe(&e),
            };
        }
    };
    let mut client =
        GateServiceClient::with_interceptor(channel, shared.config().tls.bearer(endpoint))
            .max_decoding_message_size(64 * 1024 * 1024);
    let (tx, rx) = mpsc::channel::<v1::ClientMessage>(64);
    let (mut state, hello) = SessionState::open(shared, std::time::Instant::now());
    if tx.send(hello).await.is_err() {
        return failed(false, "the session's stream closed");
    }
    let opened = tokio::select! {
        opened = client.session(ReceiverStream::new(rx)) => opened,
        _ = shared.stopped() => return Ended::Stopped,
    };
    let mut inbound = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => {
            debug!(%status, "session refused");
            return Ended::Failed {
                served: false,
                error: format!("session refused: {:?}: {}", status.code(), status.message()),
            };
        }
    };
    shared.session_opened(&endpoint.uri().to_string());
    info!(sessions_opened = shared.sessions_opened(), "session open");
    loop {
        let turn = state.turn(shared, std::time::Instant::now());
        for message in turn.send {
            if tx.send(message).await.is_err() {
                return failed(true, "the session's stream closed");
            }
        }
        if turn.close {
            return Ended::Stopped;
        }
        let deadline = state.deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            frame = inbound.message() => match frame {
                Ok(Some(frame)) => match state.on_frame(shared, frame) {
                    Ok(Some(ack)) => {
                        if tx.send(ack).await.is_err() {
                            return failed(true, "the session's stream closed");
                        }
                    }
                    Ok(None) => {}
                    Err(_) => return Ended::Resync,
                },
                Ok(None) => return failed(true, "the coordinator ended the session"),
                Err(status) => {
                    warn!(code = ?status.code(), message = status.message(), "session ended by the coordinator");
                    return Ended::Failed {
                        served: true,
                        error: format!("session ended: {:?}: {}", status.code(), status.message()),
                    };
                }
            },
            _ = shared.woken() => {}
            _ = sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {}
        }
    }
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
