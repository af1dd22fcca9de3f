//! The world of the controller tests: the fake API server, a coordinator,
//! the simulated Flink operator, and `cutover_controller::edge::run`
//! (stoppable and restartable), with helpers that wait on resource changes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cutover_controller::edge::{
    ControllerConfig, ControllerMetrics, flink_deployment_resource, run,
};
use cutover_coordinator::store::MemoryStore;
use cutover_crds::{FlinkBlueGreenDeployment, FlinkBlueGreenDeploymentSpec};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::flink_operator::SimulatedFlinkOperator;
use crate::kube_api::{FakeApiServer, Permission};
use crate::{TestCoordinator, test_config};

/// Namespace of every object in these tests.
pub const NAMESPACE: &str = "default";
/// The user the controller's requests are recorded as.
pub const CONTROLLER_USER: &str = "cutover-controller";
/// How long any awaited change may take.
pub const LIMIT: Duration = Duration::from_secs(60);

const RESOURCES: &str = "apis/cutover.dev/v1alpha1/namespaces/default/flinkbluegreendeployments";
const CHILDREN: &str = "apis/flink.apache.org/v1beta1/namespaces/default/flinkdeployments";
const EVENTS: &str = "apis/events.k8s.io/v1/namespaces/default/events";
const SECRETS: &str = "api/v1/namespaces/default/secrets";

/// A running controller.
struct RunningController {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Everything a controller test needs.
pub struct ControllerWorld {
    /// The fake API server.
    pub server: FakeApiServer,
    /// The coordinator the resources name.
    pub coordinator: TestCoordinator,
    /// The simulated Flink operator.
    pub operator: SimulatedFlinkOperator,
    /// FlinkBlueGreenDeployments in [`NAMESPACE`].
    pub resources: Api<FlinkBlueGreenDeployment>,
    /// FlinkDeployments in [`NAMESPACE`].
    pub children: Api<DynamicObject>,
    /// The controllers' metrics (shared by restarts).
    pub metrics: ControllerMetrics,
    controller: Option<RunningController>,
}

impl ControllerWorld {
    /// Starts everything, the controller included.
    pub async fn start() -> anyhow::Result<Self> {
        let server = FakeApiServer::start().await?;
        let coordinator =
            TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
        let operator = SimulatedFlinkOperator::start(&server, NAMESPACE)?;
        let client = server.client()?;
        let mut world = ControllerWorld {
            resources: Api::namespaced(client.clone(), NAMESPACE),
            children: Api::namespaced_with(client, NAMESPACE, &flink_deployment_resource()),
            server,
            coordinator,
            operator,
            metrics: ControllerMetrics::default(),
            controller: None,
        };
        world.start_controller()?;
        Ok(world)
    }

    /// Starts the controller (again).
    pub fn start_controller(&mut self) -> anyhow::Result<()> {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = ControllerConfig {
            namespace: Some(NAMESPACE.into()),
            instance: Some("test".into()),
            resync: Duration::from_secs(30),
            retry: Duration::from_millis(200),
            metrics: self.metrics.clone(),
            ..ControllerConfig::default()
        };
        let client = self.server.client_as(CONTROLLER_USER)?;
        let task = tokio::spawn(run(client, config, async move {
            let _ = stopped.await;
        }));
        self.controller = Some(RunningController { stop, task });
        Ok(())
    }

    /// Stops the controller and waits until it stopped.
    pub async fn stop_controller(&mut self) -> anyhow::Result<()> {
        if let Some(controller) = self.controller.take() {
            let _ = controller.stop.send(());
            tokio::time::timeout(LIMIT, controller.task)
                .await
                .context("the controller did not stop")??;
        }
        Ok(())
    }

    /// A resource named `name` running `image`, on this world's
    /// coordinator, with `configuration` merged over the test defaults
    /// (deletion delay 0s).
    pub async fn create(
        &self,
        name: &str,
        image: &str,
        configuration: Value,
    ) -> anyhow::Result<FlinkBlueGreenDeployment> {
        self.create_placed(name, image, configuration, Value::Null)
            .await
    }

    /// Like [`ControllerWorld::create`], with `placement` as
    /// `spec.placement`.
    pub async fn create_placed(
        &self,
        name: &str,
        image: &str,
        configuration: Value,
        placement: Value,
    ) -> anyhow::Result<FlinkBlueGreenDeployment> {
        let mut config = json!({
            "coordinator": self.coordinator.endpoint(),
            "deletionDelay": "0s",
            "abortGracePeriod": "10m",
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), configuration.as_object()) {
            config.extend(extra.clone());
        }
        let spec: FlinkBlueGreenDeploymentSpec = serde_json::from_value(json!({
            "template": {
                "metadata": {"labels": {"team": "payments"}},
                "spec": template_spec(image),
            },
            "configuration": config,
            "placement": if placement.is_null() { json!({}) } else { placement },
        }))?;
        let resource = FlinkBlueGreenDeployment::new(name, spec);
        Ok(self
            .resources
            .create(&PostParams::default(), &resource)
            .await?)
    }

    /// Resource `name` with `autoPromote: false`, ACTIVE_BLUE on image `v1`,
    /// then changed to `v2`: returned once its cutover to GREEN waits for a
    /// promotion.
    pub async fn awaiting_promotion(&self, name: &str) -> anyhow::Result<Value> {
        self.create(name, "flink:2.0-v1", json!({"autoPromote": false}))
            .await?;
        self.wait_for(name, "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
            .await?;
        self.set_image(name, "flink:2.0-v2").await?;
        self.wait_for(name, "awaiting promotion", |r| {
            condition(r, "AwaitingPromotion")
        })
        .await
    }

    /// Changes the template's image (a new template version).
    pub async fn set_image(&self, name: &str, image: &str) -> anyhow::Result<()> {
        let patch = json!({"spec": {"template": {"spec": {"image": image}}}});
        self.resources
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Changes the template's image and waits until the resource reaches
    /// `state` (e.g. `ACTIVE_GREEN`); returns it.
    pub async fn roll_to(
        &self,
        name: &str,
        image: &str,
        state_wanted: &str,
    ) -> anyhow::Result<Value> {
        self.set_image(name, image).await?;
        self.wait_for(name, state_wanted, |r| state(r) == state_wanted)
            .await
    }

    /// Sets or removes an annotation on the resource.
    pub async fn annotate(&self, name: &str, key: &str, value: Option<&str>) -> anyhow::Result<()> {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        self.resources
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// A kubeconfig file (in `dir`) for this world's API server, namespace
    /// [`NAMESPACE`], as `kubectl` and the `cutover` command read it.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kubeconfig_text(&self.server))?;
        Ok(path)
    }

    /// Another cluster: its own fake API server with the simulated Flink
    /// operator on it, and a Secret `secret` in this world's namespace
    /// holding a kubeconfig that reaches it (key `kubeconfig`).
    pub async fn other_cluster(&self, secret: &str) -> anyhow::Result<OtherCluster> {
        let server = FakeApiServer::start().await?;
        let operator = SimulatedFlinkOperator::start(&server, NAMESPACE)?;
        let mut data = std::collections::BTreeMap::new();
        data.insert(
            "kubeconfig".to_string(),
            k8s_openapi::ByteString(kubeconfig_text(&server).into_bytes()),
        );
        let object = k8s_openapi::api::core::v1::Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(secret.into()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        self.server
            .put_raw(SECRETS, secret, serde_json::to_value(object)?);
        Ok(OtherCluster {
            server,
            _operator: operator,
        })
    }

    /// Waits until the resource `name` (as stored; `Null` once it is gone)
    /// satisfies `predicate`, and returns it.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        predicate: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        self.wait_for_object(RESOURCES, name, what, predicate).await
    }

    /// The resource `name` as stored now (`None`: there is none).
    pub fn resource(&self, name: &str) -> Option<Value> {
        self.server.get_raw(RESOURCES, name)
    }

    /// Waits until the resource `name` shows a `lastError` containing
    /// `needle`, and returns it.
    pub async fn wait_for_error(&self, name: &str, needle: &str) -> anyhow::Result<Value> {
        self.wait_for(name, &format!("showing an error with {needle:?}"), |r| {
            last_error(r).contains(needle)
        })
        .await
    }

    /// Waits until the child `name` satisfies `predicate` (`Null`: gone).
    pub async fn wait_for_child(
        &self,
        name: &str,
        what: &str,
        predicate: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        self.wait_for_object(CHILDREN, name, what, predicate).await
    }

    /// Waits until an Event with `reason` about the resource `name` is
    /// recorded.
    pub async fn wait_for_event(&self, name: &str, reason: &str) -> anyhow::Result<()> {
        self.wait_for_event_where(name, reason, |_| true).await
    }

    /// Waits until an Event with `reason` whose note satisfies `note` is
    /// recorded about the resource `name`.
    pub async fn wait_for_event_where(
        &self,
        name: &str,
        reason: &str,
        note: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        let seen = || {
            self.events(name)
                .iter()
                .any(|(r, n)| r == reason && note(n))
                .then_some(())
        };
        self.until(seen, || {
            anyhow::anyhow!(
                "no such {reason} Event about {name} within {LIMIT:?}; there are {:?}",
                self.events(name)
            )
        })
        .await
    }

    async fn wait_for_object(
        &self,
        collection: &str,
        name: &str,
        what: &str,
        predicate: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let current = || self.server.get_raw(collection, name).unwrap_or(Value::Null);
        self.until(
            || Some(current()).filter(|c| predicate(c)),
            || {
                let now = serde_json::to_string_pretty(&current()).unwrap_or_default();
                anyhow::anyhow!("{name} never became {what} within {LIMIT:?}; now: {now}")
            },
        )
        .await
    }

    /// Re-evaluates `check` after every change on the API server until it
    /// gives a value, at most [`LIMIT`]; then `timed_out`'s error.
    async fn until<T>(
        &self,
        check: impl Fn() -> Option<T>,
        timed_out: impl Fn() -> anyhow::Error,
    ) -> anyhow::Result<T> {
        let mut changes = self.server.changes();
        let wait = async {
            loop {
                if let Some(found) = check() {
                    return Ok(found);
                }
                // Any change may be the one; check again after each.
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = changes.recv().await
                {
                    bail!("the API server stopped");
                }
            }
        };
        tokio::time::timeout(LIMIT, wait)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    /// How often the controllers carried out `action` successfully.
    pub fn actions_done(&self, action: &'static str) -> u64 {
        self.metrics
            .actions
            .get_or_create(&cutover_controller::edge::ActionLabel {
                action,
                outcome: "ok",
            })
            .get()
    }

    /// The child `name`, if it exists.
    pub fn child(&self, name: &str) -> Option<Value> {
        self.server.get_raw(CHILDREN, name)
    }

    /// Reasons of the Events recorded about the resource `name`, oldest
    /// first.
    pub fn event_reasons(&self, name: &str) -> Vec<String> {
        self.events(name)
            .into_iter()
            .map(|(reason, _)| reason)
            .collect()
    }

    /// (reason, note) of the Events recorded about the resource `name`,
    /// oldest first.
    pub fn events(&self, name: &str) -> Vec<(String, String)> {
        let mut events: Vec<(u64, String, String)> = self
            .server
            .list_raw(EVENTS)
            .into_iter()
            .filter(|e| e["regarding"]["name"] == name)
            .map(|e| {
                let version = e["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let text = |field: &str| e[field].as_str().unwrap_or("").to_string();
                (version, text("reason"), text("note"))
            })
            .collect();
        events.sort();
        events
            .into_iter()
            .map(|(_, reason, note)| (reason, note))
            .collect()
    }
}

/// Another cluster of a [`ControllerWorld`] (see
/// [`ControllerWorld::other_cluster`]).
pub struct OtherCluster {
    /// Its API server.
    pub server: FakeApiServer,
    _operator: SimulatedFlinkOperator,
}

impl OtherCluster {
    /// The child `name` there, if it exists.
    pub fn child(&self, name: &str) -> Option<Value> {
        self.server.get_raw(CHILDREN, name)
    }
}

/// A kubeconfig reaching `server`, namespace [`NAMESPACE`].
fn kubeconfig_text(server: &FakeApiServer) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\nusers:\n- name: tester\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n    namespace: {NAMESPACE}\ncurrent-context: fake\n",
        server.address
    )
}

/// What the ClusterRole in `deploy/base/controller.yaml` grants: (API group,
/// resource, verb).
pub fn granted_by_deploy() -> anyhow::Result<BTreeSet<Permission>> {
    let text = include_str!("../../deploy/base/controller.yaml");
    let mut role = None;
    for document in serde_yaml::Deserializer::from_str(text) {
        let document = Value::deserialize(document)?;
        if document["kind"] == "ClusterRole" {
            role = Some(document);
        }
    }
    let role = role.context("deploy/base/controller.yaml has no ClusterRole")?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    Ok(granted)
}

/// Whether `child` starts from a savepoint the simulated Flink operator
/// took of the child named `other` (e.g. `orders-blue`).
pub fn starts_from_savepoint_of(child: &Value, other: &str) -> bool {
    child["spec"]["job"]["initialSavepointPath"]
        .as_str()
        .is_some_and(|p| p.starts_with(&format!("file:///savepoints/{other}/")))
}

/// The resource's `status.lastError` (empty without one).
pub fn last_error(resource: &Value) -> &str {
    resource["status"]["lastError"].as_str().unwrap_or("")
}

/// A FlinkDeployment spec as a user writes it for the official operator.
pub fn template_spec(image: &str) -> Value {
    json!({
        "image": image,
        "flinkVersion": "v2_0",
        "serviceAccount": "flink",
        "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
        "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
        "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
        "job": {"jarURI": "local:///opt/flink/usrlib/orders.jar", "parallelism": 2, "upgradeMode": "savepoint"},
    })
}

/// `status.state` of a stored resource.
pub fn state(resource: &Value) -> &str {
    resource["status"]["state"].as_str().unwrap_or("")
}

/// Whether condition `type_` of a stored resource is `True`.
pub fn condition(resource: &Value, type_: &str) -> bool {
    resource["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == type_ && c["status"] == "True")
        })
}
