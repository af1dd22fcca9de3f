//! The coordinator's pipelines: each one's protocol state, its store
//! version, its published frames, and the tasks that move it.
//!
//! Write path (one writer per pipeline at a time): propose from the core,
//! compare-and-swap in the store against the version the installed document
//! was read at, install only once the store took it, then publish. A lost
//! compare-and-swap installs what the store holds and proposes again. Gates
//! therefore only ever see durable documents.
//!
//! Per pipeline, two tasks run: the *driver* (woken by gate progress, writes
//! horizon raises and DRAINED) and the *store watcher* (installs documents
//! written by others: another coordinator, an operator).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use std::time::{Duration, Instant};

use cutover_core::session::resume;
use cutover_core::{
    Colour, CoreError, Epoch, GateIdentity, GateKey, GateProgress, HorizonPolicy, Incarnation,
    Installed, Key, PipelineDoc, PipelineName, PipelineState, PipelineStatus, PlanVersion, Resume,
    SessionError, SessionId,
};
use futures::StreamExt;
use tokio::sync::{Notify, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::broken::{Broken, BrokenPipelines};
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::fleet::Membership;
use crate::log_limit::{RepeatLimiter, Verdict};
use crate::metrics::{Metrics, PipelineLabel, WriteLabel};
use crate::published::Published;
use crate::store::{CasOutcome, DeleteOutcome, Store, Stored, Version};

/// Compare-and-swap deletes tried before giving up on a busy pipeline.
const MAX_DELETE_ATTEMPTS: u32 = 8;

/// At most one log line per this interval for a failure that repeats.
const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// A running coordinator: cheap to clone, every clone is the same one.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    membership: Arc<Membership>,
    config: CoordinatorConfig,
    metrics: Metrics,
    pipelines: RwLock<HashMap<PipelineName, Arc<PipelineCell>>>,
    broken: BrokenPipelines,
    create: tokio::sync::Mutex<()>,
    next_session: AtomicU64,
    shutdown: watch::Sender<bool>,
    ready: watch::Sender<bool>,
}

/// One pipeline inside the coordinator.
pub struct PipelineCell {
    name: PipelineName,
    state: Mutex<CellState>,
    write: tokio::sync::Mutex<()>,
    published: watch::Sender<Arc<Published>>,
    changed: watch::Sender<u64>,
    wake: Notify,
    retired: watch::Sender<bool>,
}

struct CellState {
    core: PipelineState,
    version: Version,
}

impl PipelineCell {
    fn lock(&self) -> MutexGuard<'_, CellState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest published frames.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.published.subscribe()
    }

    /// Notified on every status change (plan, acks, progress).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The pipeline's status now.
    pub fn status(&self) -> PipelineStatus {
        self.lock().core.status()
    }

    /// The pipeline's name.
    pub fn name(&self) -> &PipelineName {
        &self.name
    }

    /// Whether the pipeline was deleted (its streams end).
    pub fn is_retired(&self) -> bool {
        *self.retired.borrow()
    }

    /// Which plan is installed.
    pub fn version(&self) -> PlanVersion {
        PlanVersion::of(self.lock().core.doc())
    }

    /// The installed document.
    pub fn doc(&self) -> PipelineDoc {
        self.lock().core.doc().clone()
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Becomes true when the pipeline is deleted.
    pub(crate) fn retired(&self) -> watch::Receiver<bool> {
        self.retired.subscribe()
    }

    /// Reads the core state.
    pub(crate) fn read_core<T>(&self, f: impl FnOnce(&PipelineState) -> T) -> T {
        f(&self.lock().core)
    }

    /// Changes the core state outside a gate session (the fleet view), and
    /// has the automatic changes re-evaluated.
    pub(crate) fn update_core(&self, f: impl FnOnce(&mut PipelineState)) {
        self.with_core(f);
        self.wake.notify_one();
    }

    /// Runs `f` on the core state; marks the status changed only if it
    /// did (a duplicate report wakes no watcher).
    fn with_core<T>(&self, f: impl FnOnce(&mut PipelineState) -> T) -> T {
        let (out, changed) = {
            let mut state = self.lock();
            let before = state.core.status();
            let out = f(&mut state.core);
            (out, state.core.status() != before)
        };
        if changed {
            self.touch();
        }
        out
    }
}

impl Coordinator {
    /// A coordinator on `store`. Call [`Coordinator::load_all`] to serve the
    /// pipelines already stored.
    pub fn new(store: Arc<dyn Store>, config: CoordinatorConfig, metrics: Metrics) -> Self {
        let membership = Arc::new(Membership::new(config.fleet.clone()));
        let coordinator = Coordinator {
            inner: Arc::new(Inner {
                store,
                membership,
                config,
                metrics,
                pipelines: RwLock::new(HashMap::new()),
                broken: BrokenPipelines::default(),
                create: tokio::sync::Mutex::new(()),
                next_session: AtomicU64::new(1),
                shutdown: watch::channel(false).0,
                ready: watch::channel(true).0,
            }),
        };
        // Without a runtime (a tool reading the store) there is no fleet.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let span = info_span!("fleet", coordinator = %coordinator.inner.membership.id());
            runtime.spawn(crate::fleet::run_membership(coordinator.clone()).instrument(span));
        }
        coordinator
    }

    /// The status of `cell` as this coordinator answers it: the fleet's
    /// gates, and each coordinator serving them, this one first.
    pub fn status(&self, cell: &PipelineCell) -> PipelineStatus {
        let mut status = cell.status();
        let members = self.inner.membership.members();
        for serving in &mut status.serving {
            if serving.answering {
                serving.coordinator = self.inner.membership.id().to_string();
                continue;
            }
            if let Some(member) = members
                .iter()
                .find(|m| m.id.as_str() == serving.coordinator)
            {
                serving.live = member.live;
                serving.renewed_ms_ago = member
                    .renewed
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            }
        }
        status
    }

    /// What this coordinator knows of the others serving with it.
    pub fn membership(&self) -> &Arc<Membership> {
        &self.inner.membership
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Loads every pipeline in the store; returns how many are served. A
    /// pipeline whose document cannot be read is marked broken (see
    /// [`crate::broken`]) and the others are served; only a store that
    /// cannot be reached fails the load.
    pub async fn load_all(&self) -> Result<usize, CoordinatorError> {
        let names = self.inner.store.list().await?;
        let mut served = 0;
        for name in &names {
            match self.cell(name).await {
                Ok(_) => served += 1,
                Err(CoordinatorError::Store(e)) if Broken::of(&e).is_some() => {}
                Err(CoordinatorError::UnknownPipeline(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(served)
    }

    /// The pipelines whose stored state cannot be read.
    pub fn broken(&self) -> &BrokenPipelines {
        &self.inner.broken
    }

    /// Marks `name` broken if `error` says its state is unreadable.
    fn note_broken(&self, name: &PipelineName, error: &crate::store::StoreError) {
        if let Some(broken) = Broken::of(error)
            && self.inner.broken.mark(name, broken)
        {
            warn!(pipeline = %name, %error, "pipeline state unreadable; serving the others");
            self.inner.metrics.broken_pipelines.inc();
        }
    }

    /// `name` is readable again.
    fn note_repaired(&self, name: &PipelineName) {
        if self.inner.broken.clear(name) {
            info!(pipeline = %name, "pipeline state readable again");
            self.inner.metrics.broken_pipelines.dec();
        }
    }

    /// Settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.inner.config
    }

    /// Metric handles.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Description of the store.
    pub fn store_description(&self) -> String {
        self.inner.store.describe()
    }

    /// Whether the coordinator reports itself serving on health (it may be
    /// waiting for its store).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.send_replace(ready);
    }

    /// Readiness now and on every change.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.inner.ready.subscribe()
    }

    /// Ends every session and stops the pipeline tasks.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves once [`Coordinator::shutdown`] was called.
    pub async fn stopped(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        // An error means the sender is gone: the coordinator is gone too.
        let _ = rx.wait_for(|&stopping| stopping).await;
    }

    /// A new session id.
    pub fn next_session_id(&self) -> SessionId {
        SessionId(self.inner.next_session.fetch_add(1, Ordering::Relaxed))
    }

    /// The status of every pipeline served, sorted by name (as
    /// [`Coordinator::status`] answers each).
    pub fn statuses(&self) -> Vec<PipelineStatus> {
        let cells: Vec<Arc<PipelineCell>> = self.read_pipelines().values().cloned().collect();
        let mut statuses: Vec<PipelineStatus> = cells.iter().map(|c| self.status(c)).collect();
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        statuses
    }

    /// Names of the pipelines served, sorted.
    pub fn pipeline_names(&self) -> Vec<PipelineName> {
        let mut names: Vec<_> = self.read_pipelines().keys().cloned().collect();
        names.sort();
        names
    }

    fn read_pipelines(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<PipelineName, Arc<PipelineCell>>> {
        self.inner
            .pipelines
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, name: &PipelineName) -> Option<Arc<PipelineCell>> {
        self.read_pipelines().get(name).cloned()
    }

    /// The pipeline `name`, loaded from the store if needed. DATA_LOSS for
    /// a pipeline whose stored state cannot be read.
    pub async fn cell(&self, name: &PipelineName) -> Result<Arc<PipelineCell>, CoordinatorError> {
        if let Some(cell) = self.cached(name) {
            return self.readable(cell);
        }
        let _create = self.inner.create.lock().await;
        if let Some(cell) = self.cached(name) {
            return self.readable(cell);
        }
        let stored = match self.inner.store.load(name).await {
            Ok(stored) => stored,
            Err(e) => {
                self.note_broken(name, &e);
                return Err(e.into());
            }
        };
        self.note_repaired(name);
        let stored = stored.ok_or_else(|| CoordinatorError::UnknownPipeline(name.clone()))?;
        Ok(self.adopt(stored))
    }

    /// `cell`, unless its stored state became unreadable while served.
    fn readable(&self, cell: Arc<PipelineCell>) -> Result<Arc<PipelineCell>, CoordinatorError> {
        match self.inner.broken.get(&cell.name) {
            Some(broken) => Err(broken.error().into()),
            None => Ok(cell),
        }
    }

    /// The pipeline `name`, created in the store (owned by `owner`) if it
    /// does not exist yet.
    pub async fn ensure(
        &self,
        name: &PipelineName,
        owner: Colour,
    ) -> Result<Arc<PipelineCell>, CoordinatorError> {
        self.ensure_with(name, owner, self.inner.config.horizon)
            .await
    }

    /// The pipeline `name`, created in the store (owned by `owner`, with
    /// `horizon`) if it does not exist yet; an existing one is unchanged.
    pub async fn ensure_with(
        &self,
        name: &PipelineName,
        owner: Colour,
        horizon: HorizonPolicy,
    ) -> Result<Arc<PipelineCell>, CoordinatorError> {
        match self.cell(name).await {
            Err(CoordinatorError::UnknownPipeline(_)) => {}
            other => return other,
        }
        let _create = self.inner.create.lock().await;
        if let Some(cell) = self.cached(name) {
            return Ok(cell);
        }
        // Never 0, the incarnation of documents older than incarnations.
        let incarnation = Incarnation(rand::random::<u64>() | 1);
        let doc = PipelineDoc::new(name.clone(), owner, horizon, incarnation);
        let stored = match self.inner.store.compare_and_swap(name, None, &doc).await? {
            CasOutcome::Written(version) => {
                info!(pipeline = %name, %owner, %incarnation, "created pipeline");
                Stored { version, doc }
            }
            CasOutcome::Conflict(Some(stored)) => *stored,
            CasOutcome::Conflict(None) => {
                return Err(CoordinatorError::Contention {
                    pipeline: name.clone(),
                    attempts: 1,
                });
            }
        };
        Ok(self.adopt(stored))
    }

    fn adopt(&self, stored: Stored) -> Arc<PipelineCell> {
        let name = stored.doc.name.clone();
        let cell = Arc::new(PipelineCell {
            name: name.clone(),
            published: watch::channel(Arc::new(Published::encode(&stored.doc))).0,
            state: Mutex::new(CellState {
                core: PipelineState::new(stored.doc),
                version: stored.version,
            }),
            write: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
            wake: Notify::new(),
            retired: watch::channel(false).0,
        });
        self.inner
            .pipelines
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), cell.clone());
        self.record_epoch(&cell);
        let span = info_span!("pipeline", pipeline = %name);
        tokio::spawn(self.clone().drive(cell.clone()).instrument(span.clone()));
        tokio::spawn(
            crate::fleet::run_pipeline(self.clone(), cell.clone()).instrument(span.clone()),
        );
        tokio::spawn(self.clone().watch_store(cell.clone()).instrument(span));
        cell
    }

    fn record_epoch(&self, cell: &PipelineCell) {
        let epoch = cell.lock().core.doc().epoch();
        self.inner
            .metrics
            .epoch
            .get_or_create(&PipelineLabel {
                pipeline: cell.name.to_string(),
            })
            .set(i64::try_from(epoch.0).unwrap_or(i64::MAX));
    }

    /// Installs a stored document and publishes it if it is newer.
    fn install(&self, cell: &PipelineCell, stored: Stored) -> Result<Installed, CoordinatorError> {
        let mut state = cell.lock();
        let installed = state.core.install(stored.doc)?;
        state.version = stored.version;
        if installed == Installed::Replaced {
            info!(incarnation = %state.core.doc().incarnation(), "the pipeline was deleted and created again elsewhere");
        }
        if installed != Installed::Unchanged {
            let doc = state.core.doc();
            debug!(epoch = %doc.epoch(), horizon = %doc.horizon(), "installed");
            cell.published
                .send_replace(Arc::new(Published::encode(doc)));
            drop(state);
            cell.touch();
            self.record_epoch(cell);
            // A new document may enable an automatic change (a promotion
            // lifts the horizon cap): re-evaluate.
            cell.wake.notify_one();
        }
        Ok(installed)
    }

    /// Proposes with `propose` and writes the result through the store,
    /// retrying on lost compare-and-swaps. `Ok(None)`: nothing to write.
    pub async fn write(
        &self,
        cell: &PipelineCell,
        propose: impl Fn(&PipelineState) -> Result<Option<PipelineDoc>, CoreError>,
    ) -> Result<Option<PipelineDoc>, CoordinatorError> {
        let _writer = cell.write.lock().await;
        let attempts = self.inner.config.cas_attempts;
        let label = |outcome| WriteLabel {
            pipeline: cell.name.to_string(),
            outcome,
        };
        for _ in 0..attempts {
            let (next, version) = {
                let state = cell.lock();
                (propose(&state.core)?, state.version.clone())
            };
            let Some(next) = next else { return Ok(None) };
            let outcome = self
                .inner
                .store
                .compare_and_swap(&cell.name, Some(&version), &next)
                .await;
            match outcome {
                Ok(CasOutcome::Written(version)) => {
                    self.inner
                        .metrics
                        .store_writes
                        .get_or_create(&label("written"))
                        .inc();
                    self.install(
                        cell,
                        Stored {
                            version,
                            doc: next.clone(),
                        },
                    )?;
                    return Ok(Some(next));
                }
                Ok(CasOutcome::Conflict(Some(current))) => {
                    self.inner
                        .metrics
                        .store_writes
                        .get_or_create(&label("conflict"))
                        .inc();
                    debug!(version = %current.version, "lost compare-and-swap; reloading");
                    self.install(cell, *current)?;
                }
                Ok(CasOutcome::Conflict(None)) => {
                    return Err(CoordinatorError::UnknownPipeline(cell.name.clone()));
                }
                Err(e) => {
                    self.inner
                        .metrics
                        .store_writes
                        .get_or_create(&label("error"))
                        .inc();
                    return Err(e.into());
                }
            }
        }
        Err(CoordinatorError::Contention {
            pipeline: cell.name.clone(),
            attempts,
        })
    }

    /// Reloads the stored document (a client holds a newer epoch than ours).
    pub async fn refresh(&self, cell: &PipelineCell) -> Result<(), CoordinatorError> {
        if let Some(stored) = self.inner.store.load(&cell.name).await? {
            self.install(cell, stored)?;
        }
        Ok(())
    }

    async fn drive(self, cell: Arc<PipelineCell>) {
        let mut retired = cell.retired.subscribe();
        let mut failures = RepeatLimiter::new(REPEAT_LOG_INTERVAL);
        loop {
            tokio::select! {
                _ = cell.wake.notified() => {}
                _ = self.stopped() => return,
                _ = retired.wait_for(|r| *r) => return,
            }
            match self.write(&cell, |core| Ok(core.propose_automatic())).await {
                Ok(_) => {
                    let suppressed = failures.reset();
                    if suppressed > 0 {
                        info!(suppressed, "automatic plan changes succeed again");
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    if let Verdict::Log { suppressed } = failures.occurred(&message, Instant::now())
                    {
                        warn!(error = %message, suppressed, "automatic plan change failed; retrying");
                    }
                    tokio::time::sleep(self.inner.config.retry_backoff).await;
                    cell.wake.notify_one();
                }
            }
        }
    }

    async fn watch_store(self, cell: Arc<PipelineCell>) {
        let mut changes = self.inner.store.watch(&cell.name);
        let mut retired = cell.retired.subscribe();
        let mut failures = RepeatLimiter::new(REPEAT_LOG_INTERVAL);
        loop {
            let next = tokio::select! {
                next = changes.next() => next,
                _ = self.stopped() => return,
                _ = retired.wait_for(|r| *r) => return,
            };
            match next {
                None => return,
                Some(Ok(Some(stored))) => {
                    failures.reset();
                    self.note_repaired(&cell.name);
                    let behind = |doc: &PipelineDoc| {
                        let core = cell.lock();
                        let installed = core.core.doc();
                        installed.incarnation() != doc.incarnation()
                            || installed.epoch() < doc.epoch()
                    };
                    if !behind(&stored.doc) {
                        continue;
                    }
                    let _writer = cell.write.lock().await;
                    // Our own writer may have moved on while we waited.
                    if !behind(&stored.doc) {
                        continue;
                    }
                    match self.install(&cell, stored) {
                        Ok(_) => debug!("installed a document written by another writer"),
                        Err(e) => warn!(error = %e, "refused a stored document"),
                    }
                }
                Some(Ok(None)) => {
                    // Deleted by another coordinator or by hand: stop serving
                    // the old state; a request loads whatever comes next.
                    info!("the pipeline was deleted from the store");
                    let _writer = cell.write.lock().await;
                    self.forget(&cell);
                    return;
                }
                Some(Err(e)) => {
                    self.note_broken(&cell.name, &e);
                    let message = e.to_string();
                    if let Verdict::Log { suppressed } = failures.occurred(&message, Instant::now())
                    {
                        warn!(error = %message, suppressed, "store watch failed");
                    }
                }
            }
        }
    }

    /// Deletes pipeline `name` from the store and forgets it; refused
    /// while any of its gates is connected. Returns the deleted epoch.
    pub async fn delete(&self, name: &PipelineName) -> Result<u64, CoordinatorError> {
        let cell = self.cell(name).await?;
        let _writer = cell.write.lock().await;
        let _create = self.inner.create.lock().await;
        for _ in 0..MAX_DELETE_ATTEMPTS {
            let (version, epoch, connected) = {
                let state = cell.lock();
                let status = state.core.status();
                (
                    state.version.clone(),
                    state.core.doc().epoch().0,
                    status.blue.connected + status.green.connected,
                )
            };
            if connected > 0 {
                return Err(CoordinatorError::GatesConnected {
                    pipeline: name.clone(),
                    connected,
                });
            }
            match self.inner.store.delete(name, &version).await? {
                DeleteOutcome::Deleted | DeleteOutcome::Conflict(None) => {
                    self.forget(&cell);
                    info!(pipeline = %name, epoch, "deleted pipeline");
                    return Ok(epoch);
                }
                DeleteOutcome::Conflict(Some(stored)) => {
                    self.install(&cell, *stored)?;
                }
            }
        }
        Err(CoordinatorError::Contention {
            pipeline: name.clone(),
            attempts: MAX_DELETE_ATTEMPTS,
        })
    }

    /// Drops `cell` from the registry and stops its tasks.
    fn forget(&self, cell: &PipelineCell) {
        self.inner
            .pipelines
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cell.name);
        self.inner.metrics.forget_pipeline(cell.name.as_str());
        cell.retired.send_replace(true);
        cell.touch();
        // Wake the sessions carrying its gates: they end.
        cell.published.send_modify(|_| {});
    }

    // --- gate sessions -------------------------------------------------

    /// Registers `gates` (all of pipeline `name`) on `session`; the client
    /// claims to hold `claim` (epoch, incarnation) of that pipeline (see the
    /// core's resume rule). Returns the cell and the epoch the client holds
    /// of its current incarnation (`Epoch(0)`: none).
    pub async fn attach(
        &self,
        session: SessionId,
        name: &PipelineName,
        gates: &[GateIdentity],
        claim: Option<(Epoch, Incarnation)>,
    ) -> Result<(Arc<PipelineCell>, Epoch), CoordinatorError> {
        let owner = gates
            .first()
            .map(|g| g.colour)
            .ok_or(SessionError::NoGates)?;
        let cell = self.ensure(name, owner).await?;
        let held = match resume(claim, cell.version()) {
            Resume::Holds(epoch) => epoch,
            Resume::Ahead => {
                // We may be behind the store: read it, then ask again.
                self.refresh(&cell).await?;
                match resume(claim, cell.version()) {
                    Resume::Holds(epoch) => epoch,
                    Resume::Ahead => {
                        return Err(SessionError::EpochNeverIssued {
                            pipeline: name.clone(),
                            held: claim.map_or(Epoch(0), |c| c.0),
                            newest: cell.version().epoch,
                        }
                        .into());
                    }
                }
            }
        };
        cell.with_core(|core| core.attach(session, gates, held))?;
        // Operators the document does not record yet are written before the
        // session sends these gates their first frame: a coordinator that
        // decides DRAINED counts only what the document records. Should the
        // write fail, the session ends and the client attaches again (its
        // gates hold meanwhile).
        if cell.lock().core.own_operators_unrecorded()
            && let Err(error) = self.write(&cell, |core| Ok(core.propose_automatic())).await
        {
            // The session ends with this error: its gates leave with it.
            cell.with_core(|core| core.close_session(session));
            cell.wake.notify_one();
            return Err(error);
        }
        self.inner.metrics.gates.inc_by(gates.len() as i64);
        Ok((cell, held))
    }

    /// Forgets the recorded gate operator `uid` of `colour` of pipeline
    /// `name` (see `PipelineState::propose_forget_operator`).
    pub async fn forget_operator(
        &self,
        name: &PipelineName,
        colour: Colour,
        uid: &str,
    ) -> Result<Arc<PipelineCell>, CoordinatorError> {
        let cell = self.cell(name).await?;
        self.write(&cell, |core| {
            core.propose_forget_operator(colour, uid).map(Some)
        })
        .await?;
        cell.with_core(|core| core.forget_operator_gates(colour, uid))?;
        cell.wake.notify_one();
        Ok(cell)
    }

    /// Removes gates from a session.
    pub fn detach(
        &self,
        session: SessionId,
        cell: &PipelineCell,
        gates: &[GateKey],
    ) -> Result<(), CoordinatorError> {
        cell.with_core(|core| core.detach(session, gates))?;
        self.inner.metrics.gates.dec_by(gates.len() as i64);
        Ok(())
    }

    /// The session ended; `gates` is how many it still carried.
    pub fn close_session(&self, session: SessionId, cell: &PipelineCell, gates: usize) {
        cell.with_core(|core| core.close_session(session));
        self.inner.metrics.gates.dec_by(gates as i64);
        cell.wake.notify_one();
    }

    /// The session installed `epoch`.
    pub fn ack(
        &self,
        session: SessionId,
        cell: &PipelineCell,
        epoch: Epoch,
    ) -> Result<(), CoordinatorError> {
        cell.with_core(|core| core.ack(session, epoch))?;
        Ok(())
    }

    /// A gate's progress.
    pub fn progress(
        &self,
        session: SessionId,
        cell: &PipelineCell,
        gate: &GateKey,
        progress: GateProgress,
    ) -> Result<(), CoordinatorError> {
        cell.with_core(|core| core.progress(session, gate, progress))?;
        cell.wake.notify_one();
        Ok(())
    }

    /// A gate holds `key`.
    pub fn horizon_request(
        &self,
        session: SessionId,
        cell: &PipelineCell,
        gate: &GateKey,
        key: Key,
        watermark: Key,
    ) -> Result<(), CoordinatorError> {
        cell.with_core(|core| core.horizon_request(session, gate, key, watermark))?;
        cell.wake.notify_one();
        Ok(())
    }
}
