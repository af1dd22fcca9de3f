//! Serving pipelines together with other coordinators (the rules are in
//! `cutover_core::fleet`): this coordinator renews its liveness record,
//! follows the others' with its own monotonic clock, publishes per pipeline
//! a report of the gates it serves whenever what the others decide on
//! changed, and folds the live reports of the others into each pipeline's
//! view, so that DRAINED, the horizon and the status cover the whole fleet.
//! On a clean stop it removes its records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cutover_core::fleet::{CoordinatorId, Liveness, ReportDigest, ServingReport};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::FleetConfig;
use crate::log_limit::{RepeatLimiter, Verdict};
use crate::registry::{Coordinator, PipelineCell};
use crate::store::{Collection, Records, Store};

/// At most one log line per this interval for a failure that repeats.
const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// What this coordinator knows of the fleet.
pub struct Membership {
    config: FleetConfig,
    origin: Instant,
    liveness: Mutex<Liveness>,
    /// The other coordinators live now; changes wake the pipelines.
    live: watch::Sender<BTreeSet<CoordinatorId>>,
}

/// Another coordinator as this one sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its id.
    pub id: CoordinatorId,
    /// Whether its reports count.
    pub live: bool,
    /// How long ago its renewal counter was last seen changing.
    pub renewed: Option<Duration>,
}

impl Membership {
    pub(crate) fn new(config: FleetConfig) -> Self {
        let ttl = u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX);
        Membership {
            config,
            origin: Instant::now(),
            liveness: Mutex::new(Liveness::new(ttl)),
            live: watch::channel(BTreeSet::new()).0,
        }
    }

    /// This coordinator's id.
    pub fn id(&self) -> &CoordinatorId {
        &self.config.id
    }

    /// The settings.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn liveness(&self) -> MutexGuard<'_, Liveness> {
        self.liveness.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The other coordinators seen, live or not.
    pub fn members(&self) -> Vec<Member> {
        let now = self.now();
        let liveness = self.liveness();
        liveness
            .known(now)
            .filter(|(id, _)| *id != self.id())
            .map(|(id, live)| Member {
                id: id.clone(),
                live,
                renewed: liveness.age(id, now).map(Duration::from_millis),
            })
            .collect()
    }

    /// The other coordinators whose reports count now.
    pub fn live(&self) -> BTreeSet<CoordinatorId> {
        self.live.borrow().clone()
    }

    /// Follows the liveness records (`records`), and re-judges them on
    /// every tick: whoever stopped renewing drops out.
    fn observe(&self, records: Option<&Records>) {
        let now = self.now();
        let live: BTreeSet<CoordinatorId> = {
            let mut liveness = self.liveness();
            if let Some(records) = records {
                let gone: Vec<CoordinatorId> = liveness
                    .known(now)
                    .map(|(id, _)| id.clone())
                    .filter(|id| !records.contains_key(id))
                    .collect();
                for id in gone {
                    liveness.forget(&id);
                }
                for (id, value) in records {
                    if let Some(counter) = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        liveness.observe(id, counter, now);
                    }
                }
            }
            liveness
                .known(now)
                .filter(|(id, live)| *live && *id != self.id())
                .map(|(id, _)| id.clone())
                .collect()
        };
        self.live.send_if_modified(|current| {
            if *current == live {
                return false;
            }
            info!(live = ?live, "coordinators serving with this one");
            *current = live;
            true
        });
    }
}

/// Renews this coordinator's liveness record and follows the others'
/// until the coordinator stops; then removes its record.
pub(crate) async fn run_membership(coordinator: Coordinator) {
    let membership = coordinator.membership().clone();
    let store = coordinator.store().clone();
    let id = membership.id().clone();
    let config = membership.config().clone();
    let mut renew = tokio::time::interval(config.renew_interval);
    let mut judge = tokio::time::interval((config.ttl / 4).max(Duration::from_millis(50)));
    let mut records = store.watch_records(&Collection::Liveness);
    let mut counter: u64 = 0;
    let mut failures = RepeatLimiter::new(REPEAT_LOG_INTERVAL);
    loop {
        tokio::select! {
            _ = coordinator.stopped() => break,
            _ = renew.tick() => {
                counter += 1;
                let value = counter.to_string().into_bytes();
                if let Err(e) = store.put_record(&Collection::Liveness, &id, value).await {
                    let message = e.to_string();
                    if let Verdict::Log { suppressed } = failures.occurred(&message, Instant::now()) {
                        warn!(error = %message, suppressed, "cannot renew the liveness record");
                    }
                }
            }
            _ = judge.tick() => membership.observe(None),
            next = records.next() => match next {
                Some(Ok(records)) => membership.observe(Some(&records)),
                Some(Err(e)) => debug!(error = %e, "liveness watch failed"),
                None => records = store.watch_records(&Collection::Liveness),
            },
        }
    }
    let _ = store.delete_record(&Collection::Liveness, &id).await;
}

/// This coordinator's part in one pipeline's fleet: publishes its report
/// when its digest changed (at most once per `min_report_interval`), and
/// folds the live reports of the others into the pipeline's view.
pub(crate) async fn run_pipeline(coordinator: Coordinator, cell: Arc<PipelineCell>) {
    let membership = coordinator.membership().clone();
    let store = coordinator.store().clone();
    let config = membership.config().clone();
    let id = config.id.clone();
    let collection = Collection::Reports(cell.name().clone());
    let mut records = store.watch_records(&collection);
    let mut live = membership.live.subscribe();
    let mut retired = cell.retired();
    let mut check = tokio::time::interval(config.report_check);
    let mut others: BTreeMap<CoordinatorId, ServingReport> = BTreeMap::new();
    let mut publisher = Publisher::default();
    let mut failures = RepeatLimiter::new(REPEAT_LOG_INTERVAL);
    loop {
        let publish = tokio::select! {
            _ = coordinator.stopped() => break,
            _ = retired.wait_for(|r| *r) => break,
            _ = check.tick() => true,
            _ = live.changed() => {
                let now_live = live.borrow_and_update().clone();
                fold(&cell, &others, &now_live);
                false
            }
            next = records.next() => {
                match next {
                    Some(Ok(records)) => {
                        others = decode(&records, &id, &cell);
                        let now_live = live.borrow().clone();
                        fold(&cell, &others, &now_live);
                    }
                    Some(Err(e)) => debug!(error = %e, "report watch failed"),
                    None => records = store.watch_records(&collection),
                }
                false
            }
        };
        if publish
            && let Err(message) = publisher
                .publish_if_changed(&coordinator, &cell, &id, &collection, &*store)
                .await
            && let Verdict::Log { suppressed } = failures.occurred(&message, Instant::now())
        {
            warn!(error = %message, suppressed, "cannot publish the serving report");
        }
    }
    if publisher.sequence > 0 {
        let _ = store.delete_record(&collection, &id).await;
    }
}

/// When this coordinator last wrote its report, and what it said.
#[derive(Default)]
struct Publisher {
    sequence: u64,
    published: Option<ReportDigest>,
    written_at: Option<Instant>,
}

impl Publisher {
    async fn publish_if_changed(
        &mut self,
        coordinator: &Coordinator,
        cell: &PipelineCell,
        id: &CoordinatorId,
        collection: &Collection,
        store: &dyn Store,
    ) -> Result<(), String> {
        let (digest, empty) =
            cell.read_core(|core| (core.report_digest(), core.ledger().gates().next().is_none()));
        // Nothing served and nothing said: nothing to tell.
        if self.published.as_ref() == Some(&digest) || (empty && self.published.is_none()) {
            return Ok(());
        }
        let min = coordinator.membership().config().min_report_interval;
        if self.written_at.is_some_and(|at| at.elapsed() < min) {
            return Ok(());
        }
        let report = cell.read_core(|core| core.own_report(id.clone(), self.sequence + 1));
        let value = serde_json::to_vec(&report).map_err(|e| e.to_string())?;
        store
            .put_record(collection, id, value)
            .await
            .map_err(|e| e.to_string())?;
        coordinator.metrics().report_writes.inc();
        self.sequence += 1;
        self.published = Some(digest);
        self.written_at = Some(Instant::now());
        Ok(())
    }
}

/// The reports of the other coordinators in `records` (a record that does
/// not read, or names another coordinator than its key, is skipped).
fn decode(
    records: &Records,
    own: &CoordinatorId,
    cell: &PipelineCell,
) -> BTreeMap<CoordinatorId, ServingReport> {
    records
        .iter()
        .filter(|(id, _)| *id != own)
        .filter_map(|(id, bytes)| {
            match serde_json::from_slice::<ServingReport>(bytes) {
                Ok(report) if &report.coordinator == id && &report.pipeline == cell.name() => {
                    Some((id.clone(), report))
                }
                Ok(_) => {
                    warn!(coordinator = %id, "a serving report names another coordinator or pipeline; ignored");
                    None
                }
                Err(e) => {
                    warn!(coordinator = %id, error = %e, "a serving report does not read; ignored");
                    None
                }
            }
        })
        .collect()
}

/// Folds the reports of the live coordinators into the pipeline's view.
fn fold(
    cell: &PipelineCell,
    others: &BTreeMap<CoordinatorId, ServingReport>,
    live: &BTreeSet<CoordinatorId>,
) {
    let reports: Vec<ServingReport> = others
        .iter()
        .filter(|(id, _)| live.contains(*id))
        .map(|(_, report)| report.clone())
        .collect();
    cell.update_core(|core| core.set_reports(reports));
}
