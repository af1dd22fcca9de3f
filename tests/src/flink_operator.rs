//! A simulated Flink Kubernetes Operator for the controller tests: it
//! watches `FlinkDeployment`s on the fake API server and moves their status
//! the way the official operator does, and runs each RUNNING child's job as
//! gates on the coordinator the child's Flink configuration names.
//!
//! - a new child is DEPLOYED, its job RUNNING; once its gates hold a plan
//!   the deployment is STABLE;
//! - `spec.image: broken` makes the job FAILED with an error;
//! - `spec.job.state: suspended` stops the job (its gates finish) and the
//!   deployment is SUSPENDED with an `upgradeSavepointPath`;
//!   `running` again starts it from that savepoint;
//! - a new `spec.job.savepointTriggerNonce` takes a savepoint
//!   (`savepointInfo.lastSavepoint.location`);
//! - a deleted child's job stops;
//! - [`SimulatedFlinkOperator::crash`] makes a running job FAILED (a lost
//!   TaskManager, say) with the given error.
//!
//! The jobs read one shared input: an event clock running 20 event-time
//! milliseconds per wall millisecond, which every running gate observes as
//! its watermark every 5 ms.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cutover_client::{Client, ClientConfig, Colour, Key};
use cutover_controller::child::{COLOUR_KEY, COORDINATOR_KEY, PIPELINE_KEY};
use cutover_controller::edge::flink_deployment_resource;
use cutover_core::{Epoch, GateIdentity, PipelineName};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::kube_api::FakeApiServer;

/// Subtasks (gates) of every simulated job.
pub const PARALLELISM: u32 = 2;
/// Event-time milliseconds per wall-clock millisecond of the shared input.
const EVENT_SPEED: i64 = 20;

/// The running simulated operator; stops when dropped.
pub struct SimulatedFlinkOperator {
    task: JoinHandle<()>,
    savepoints: Arc<AtomicU64>,
    crashes: mpsc::UnboundedSender<(String, String)>,
}

impl Drop for SimulatedFlinkOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimulatedFlinkOperator {
    /// Starts watching FlinkDeployments in `namespace`.
    pub fn start(server: &FakeApiServer, namespace: &str) -> anyhow::Result<Self> {
        let changes = server.changes();
        let collection =
            format!("apis/flink.apache.org/v1beta1/namespaces/{namespace}/flinkdeployments");
        let existing = server.list_raw(&collection);
        let api: Api<DynamicObject> =
            Api::namespaced_with(server.client()?, namespace, &flink_deployment_resource());
        let savepoints = Arc::new(AtomicU64::new(0));
        let operator = Operator {
            api,
            jobs: HashMap::new(),
            nonces: HashMap::new(),
            savepoints: savepoints.clone(),
            clock: Instant::now(),
            crashed: HashMap::new(),
            starts: 0,
        };
        let (crashes, crashed) = mpsc::unbounded_channel();
        let task = tokio::spawn(operator.run(collection, existing, changes, crashed));
        Ok(SimulatedFlinkOperator {
            task,
            savepoints,
            crashes,
        })
    }

    /// Makes the job of child `name` fail with `error` (it stays failed).
    pub fn crash(&self, name: &str, error: &str) {
        let _ = self.crashes.send((name.to_string(), error.to_string()));
    }

    /// Savepoints taken so far (by trigger or suspension).
    pub fn savepoints(&self) -> u64 {
        self.savepoints.load(Ordering::Relaxed)
    }
}

/// A child's running job.
struct Job {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
    ready: Arc<std::sync::atomic::AtomicBool>,
}

impl Job {
    /// Finishes its gates, closes its session, and waits for that.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct Operator {
    api: Api<DynamicObject>,
    jobs: HashMap<String, Job>,
    nonces: HashMap<String, i64>,
    savepoints: Arc<AtomicU64>,
    clock: Instant,
    crashed: HashMap<String, String>,
    starts: u64,
}

impl Operator {
    async fn run(
        mut self,
        collection: String,
        existing: Vec<Value>,
        mut changes: broadcast::Receiver<crate::kube_api::WatchEvent>,
        mut crashes: mpsc::UnboundedReceiver<(String, String)>,
    ) {
        for object in existing {
            self.handle("ADDED", object).await;
        }
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(event) if event.collection == collection => {
                        self.handle(event.kind, event.object).await;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                Some((name, error)) = crashes.recv() => {
                    if let Some(job) = self.jobs.remove(&name) {
                        job.stop().await;
                    }
                    self.crashed.insert(name.clone(), error);
                    if let Ok(object) = self.api.get(&name).await
                        && let Ok(object) = serde_json::to_value(object)
                    {
                        self.handle("MODIFIED", object).await;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, kind: &str, object: Value) {
        let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
            return;
        };
        if kind == "DELETED" {
            if let Some(job) = self.jobs.remove(&name) {
                job.stop().await;
            }
            self.nonces.remove(&name);
            self.crashed.remove(&name);
            return;
        }
        let spec = &object["spec"];
        let status = &object["status"];
        let mut next = status.clone();
        if !next.is_object() {
            next = json!({});
        }
        if let Some(error) = self.crashed.get(&name) {
            next["jobStatus"]["state"] = json!("FAILED");
            next["error"] = json!(error);
        } else if spec["image"] == "broken" {
            next["lifecycleState"] = json!("DEPLOYED");
            next["jobStatus"]["state"] = json!("FAILED");
            next["error"] = json!("simulated: the image cannot start");
        } else if spec["job"]["state"] == "suspended" {
            if let Some(job) = self.jobs.remove(&name) {
                job.stop().await;
            }
            if status["lifecycleState"] != "SUSPENDED" {
                let savepoint = self.savepoint(&name);
                next["lifecycleState"] = json!("SUSPENDED");
                next["jobStatus"]["state"] = json!("FINISHED");
                next["jobStatus"]["upgradeSavepointPath"] = json!(savepoint);
            }
        } else {
            if !self.jobs.contains_key(&name) {
                match self.start_job(&name, spec) {
                    Ok(job) => {
                        self.jobs.insert(name.clone(), job);
                    }
                    Err(e) => {
                        next["lifecycleState"] = json!("DEPLOYED");
                        next["jobStatus"]["state"] = json!("FAILED");
                        next["error"] = json!(format!("simulated: {e}"));
                        self.write_status(&name, status, &next).await;
                        return;
                    }
                }
                next["lifecycleState"] = json!("DEPLOYED");
                next["jobStatus"]["state"] = json!("RUNNING");
                // (null: removed by the merge patch)
                next["jobStatus"]["upgradeSavepointPath"] = Value::Null;
            } else if status["lifecycleState"] == "DEPLOYED"
                && status["jobStatus"]["state"] == "RUNNING"
                && self.stable(&name)
            {
                next["lifecycleState"] = json!("STABLE");
            }
            if let Some(nonce) = spec["job"]["savepointTriggerNonce"].as_i64()
                && self.nonces.get(&name) != Some(&nonce)
            {
                self.nonces.insert(name.clone(), nonce);
                let savepoint = self.savepoint(&name);
                next["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"] = json!(savepoint);
            }
        }
        self.write_status(&name, status, &next).await;
    }

    /// Whether the job's gates hold a plan (its session is established).
    fn stable(&self, name: &str) -> bool {
        self.jobs
            .get(name)
            .is_some_and(|job| job.ready.load(Ordering::Relaxed))
    }

    fn savepoint(&self, name: &str) -> String {
        let n = self.savepoints.fetch_add(1, Ordering::Relaxed) + 1;
        format!("file:///savepoints/{name}/savepoint-{n}")
    }

    async fn write_status(&self, name: &str, current: &Value, next: &Value) {
        if current == next {
            return;
        }
        let _ = self
            .api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": next })),
            )
            .await;
    }

    /// Starts the job of a child: its gates observe the shared input's
    /// event clock as their watermark. When its session is established,
    /// the child's next status change (or a nudge) marks it STABLE.
    fn start_job(&mut self, name: &str, spec: &Value) -> anyhow::Result<Job> {
        self.starts += 1;
        let start = self.starts;
        let config = &spec["flinkConfiguration"];
        let text = |key: &str| {
            config[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("flinkConfiguration has no {key}"))
        };
        let endpoint = text(COORDINATOR_KEY)?;
        let pipeline = PipelineName::new(text(PIPELINE_KEY)?)?;
        let colour: Colour = text(COLOUR_KEY)?.parse()?;
        let client = Client::connect(ClientConfig::new(endpoint))?;
        let mut gates = Vec::new();
        for subtask_index in 0..PARALLELISM {
            gates.push(client.gate(GateIdentity {
                pipeline: pipeline.clone(),
                colour,
                // A new job id per start, as Flink gives each submission.
                job_id: format!("{name}-{start}"),
                gate_uid: "sink-gate".into(),
                subtask_index,
                parallelism: PARALLELISM,
                attempt: 0,
            })?);
        }
        let clock = self.clock;
        let api = self.api.clone();
        let child = name.to_string();
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let flag = ready.clone();
        let task = async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut nudged = false;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        let now = 1_700_000_000_000 + clock.elapsed().as_millis() as i64 * EVENT_SPEED;
                        for gate in &mut gates {
                            gate.observe_watermark(Key(now));
                        }
                    }
                    _ = client.wait_for_epoch(&pipeline, Epoch(1)), if !nudged => {
                        nudged = true;
                        flag.store(true, Ordering::Relaxed);
                        // Holding a plan: touch the child's status so that
                        // its MODIFIED event re-runs the operator loop,
                        // which then marks it STABLE.
                        let patch = json!({"status": {"jobStatus": {"startTime": format!("gates-ready-{start}")}}});
                        let _ = api
                            .patch_status(&child, &PatchParams::default(), &Patch::Merge(&patch))
                            .await;
                    }
                }
            }
            for gate in &mut gates {
                gate.finish();
            }
            drop(gates);
            client.shutdown().await;
        };
        Ok(Job {
            stop,
            task: tokio::spawn(task),
            ready,
        })
    }
}
