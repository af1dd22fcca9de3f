//! What a client's handles and its session task share, behind methods: the
//! plan slot of each pipeline, the registered gates, the gate changes not
//! yet told to the coordinator, the wake-up of the session task, and the
//! connection state shown to callers. Every field is private; the session
//! task owns its own state (`session_state`) and reads this.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use cutover_core::{Epoch, GateIdentity, GateKey, Incarnation, PipelineName};
use tokio::sync::watch;

use crate::config::ClientConfig;
use crate::connection_report::{ConnectionLog, ConnectionReport};
use crate::error::ClientError;
use crate::published::PublishedGate;
use crate::slot::PipelineSlot;
use crate::wake::{Signal, Signals, Wake};

/// A gate by pipeline and key.
pub(crate) type GateRef = (PipelineName, GateKey);

/// A registration or removal the coordinator has not been told of.
#[derive(Clone)]
pub(crate) enum Command {
    /// Register a gate on the live session.
    Attach(Arc<PublishedGate>),
    /// Remove a gate from the live session.
    Detach(GateRef),
}

/// Everything shared by a client's handles and its session task.
pub(crate) struct Shared {
    config: ClientConfig,
    pipelines: Mutex<HashMap<PipelineName, Arc<PipelineSlot>>>,
    gates: Mutex<BTreeMap<GateRef, Arc<PublishedGate>>>,
    commands: Mutex<Vec<Command>>,
    wake: Wake,
    connected: watch::Sender<bool>,
    sessions_opened: AtomicU64,
    connection: Mutex<ConnectionLog>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(config: ClientConfig) -> Self {
        let connection = ConnectionLog::new(config.endpoint.clone(), Instant::now());
        Shared {
            connection: Mutex::new(connection),
            config,
            pipelines: Mutex::default(),
            gates: Mutex::default(),
            commands: Mutex::default(),
            wake: Wake::default(),
            connected: watch::channel(false).0,
            sessions_opened: AtomicU64::new(0),
        }
    }

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Registers a gate and has it attached: the slot of its pipeline and
    /// what it publishes. Fails if the identity is malformed, already
    /// registered, or the client is closing.
    pub(crate) fn register(
        &self,
        identity: GateIdentity,
    ) -> Result<(Arc<PipelineSlot>, Arc<PublishedGate>), ClientError> {
        identity.validate()?;
        if self.wake.stopping() {
            return Err(ClientError::Closed);
        }
        let key = (identity.pipeline.clone(), identity.key());
        let slot = self.slot(&identity.pipeline);
        let gate = Arc::new(PublishedGate::new(identity));
        {
            let mut gates = lock(&self.gates);
            if gates.contains_key(&key) {
                return Err(ClientError::DuplicateGate(key.1.to_string()));
            }
            gates.insert(key, gate.clone());
        }
        self.command(Command::Attach(gate.clone()));
        Ok((slot, gate))
    }

    /// Unregisters a gate and has it detached.
    pub(crate) fn remove_gate(&self, key: GateRef) {
        lock(&self.gates).remove(&key);
        self.command(Command::Detach(key));
    }

    fn command(&self, command: Command) {
        lock(&self.commands).push(command);
        self.wake.raise(Signal::Commands);
    }

    /// The gate changes queued since the last call, in order.
    pub(crate) fn take_commands(&self) -> Vec<Command> {
        std::mem::take(&mut *lock(&self.commands))
    }

    /// Every registered gate.
    pub(crate) fn registered(&self) -> Vec<Arc<PublishedGate>> {
        lock(&self.gates).values().cloned().collect()
    }

    /// The slot of `pipeline`, created empty if it has none.
    pub(crate) fn slot(&self, pipeline: &PipelineName) -> Arc<PipelineSlot> {
        lock(&self.pipelines)
            .entry(pipeline.clone())
            .or_insert_with(|| Arc::new(PipelineSlot::new()))
            .clone()
    }

    /// The slot of `pipeline`, if a gate or a waiter asked for it.
    pub(crate) fn existing_slot(&self, pipeline: &PipelineName) -> Option<Arc<PipelineSlot>> {
        lock(&self.pipelines).get(pipeline).cloned()
    }

    /// Epoch and incarnation held per pipeline that has a plan.
    pub(crate) fn held_epochs(&self) -> Vec<(PipelineName, Epoch, Incarnation)> {
        lock(&self.pipelines)
            .iter()
            .filter_map(|(name, slot)| {
                slot.plan
                    .load()
                    .as_ref()
                    .map(|p| (name.clone(), p.epoch, p.incarnation))
            })
            .collect()
    }

    /// Wakes the session task for `signal`.
    pub(crate) fn raise(&self, signal: Signal) {
        self.wake.raise(signal);
    }

    /// The signals raised since the last call.
    pub(crate) fn take_signals(&self) -> Signals {
        self.wake.take()
    }

    /// Waits for the next signal.
    pub(crate) async fn woken(&self) {
        self.wake.woken().await;
    }

    /// Whether the client is closing.
    pub(crate) fn stopping(&self) -> bool {
        self.wake.stopping()
    }

    /// Waits until the client is closing.
    pub(crate) async fn stopped(&self) {
        self.wake.stopped().await;
    }

    /// Closes the client: the session task sends a last report and ends.
    pub(crate) fn stop(&self) {
        self.wake.raise(Signal::Stop);
    }

    /// A session opened (`true`) or ended.
    pub(crate) fn set_connected(&self, connected: bool) {
        if connected {
            self.sessions_opened.fetch_add(1, Ordering::Relaxed);
        }
        self.connected.send_replace(connected);
    }

    /// `true` while a session is open.
    pub(crate) fn connected(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    /// Sessions opened so far.
    pub(crate) fn sessions_opened(&self) -> u64 {
        self.sessions_opened.load(Ordering::Relaxed)
    }

    /// A session to `endpoint` opened.
    pub(crate) fn session_opened(&self, endpoint: &str) {
        lock(&self.connection).opened(endpoint, Instant::now());
        self.set_connected(true);
    }

    /// An attempt on `endpoint` failed or its session ended, for `error`;
    /// logged with the client's connection history (the first failure, then
    /// at most one line per 30 s while they go on).
    pub(crate) fn session_failed(&self, endpoint: &str, error: String) {
        let (log, report) = {
            let mut connection = lock(&self.connection);
            let log = connection.failed(endpoint, error.clone(), Instant::now());
            (log, connection.report(Instant::now()))
        };
        self.set_connected(false);
        if log {
            tracing::warn!(%endpoint, %error, "cannot reach the coordinator: {report}");
        }
    }

    /// What the client can say about its connection now.
    pub(crate) fn connection_report(&self) -> ConnectionReport {
        lock(&self.connection).report(Instant::now())
    }
}
