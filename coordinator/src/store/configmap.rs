//! The Kubernetes ConfigMap store: one ConfigMap per pipeline, the durable
//! source of truth inside a cluster.
//!
//! `cutover-<pipeline>` in the configured namespace, labelled
//! `app.kubernetes.io/managed-by=cutover` and `cutover.dev/pipeline=<name>`.
//! Its `document` key holds the pipeline document as JSON (the source of
//! truth); the other keys (`schema`, `epoch`, `active`, `segments`,
//! `horizon`, `phase`, `transition`) show the same state in plain words for
//! `kubectl get configmap -o yaml`. A ConfigMap whose plain keys disagree
//! with `document` (someone edited a view) is reported as corrupt and never
//! overwritten. The version is `metadata.resourceVersion`: a replace with a
//! stale one gets 409 and the caller reloads. Watches use kube-runtime's
//! watcher, which re-lists after 410 Gone.

use std::collections::BTreeMap;

use cutover_core::{Key, PipelineDoc, PipelineName};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use tracing::debug;

use cutover_core::fleet::CoordinatorId;

use super::configmap_records::OwnerPod;
use super::{CasOutcome, Collection, DeleteOutcome, Records, Store, StoreError, Stored, Version};

/// Label naming the tool that manages the ConfigMaps.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "cutover");
/// Label holding the pipeline name.
pub const PIPELINE_LABEL: &str = "cutover.dev/pipeline";
/// Largest document accepted (a ConfigMap holds at most 1 MiB). Compaction
/// and the capped history keep real documents to a few KiB; this is the
/// backstop.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Pipelines as ConfigMaps in one namespace.
#[derive(Clone)]
pub struct ConfigMapStore {
    api: Api<ConfigMap>,
    namespace: String,
    owner: Option<OwnerPod>,
}

pub(super) fn unavailable(e: kube::Error) -> StoreError {
    StoreError::Unavailable {
        reason: format!("kubernetes: {e}"),
    }
}

pub(super) fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

impl ConfigMapStore {
    /// A store using `client` in `namespace` (the client's default when
    /// `None`).
    pub fn new(client: kube::Client, namespace: Option<String>) -> Self {
        let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
        ConfigMapStore {
            api: Api::namespaced(client, &namespace),
            namespace,
            owner: None,
        }
    }

    /// Has this coordinator's fleet records owned by its Pod, so that they
    /// are garbage-collected with it.
    pub fn with_owner_pod(mut self, pod: OwnerPod) -> Self {
        self.owner = Some(pod);
        self
    }

    pub(super) fn api(&self) -> &Api<ConfigMap> {
        &self.api
    }

    pub(super) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(super) fn owner(&self) -> Option<&OwnerPod> {
        self.owner.as_ref()
    }

    /// Connects with the in-cluster configuration or the local kubeconfig.
    pub async fn connect(namespace: Option<String>) -> Result<Self, StoreError> {
        let client = kube::Client::try_default().await.map_err(unavailable)?;
        Ok(Self::new(client, namespace))
    }

    /// Name of the ConfigMap of `name`.
    pub fn object_name(name: &PipelineName) -> String {
        format!("cutover-{name}")
    }

    fn location(&self, name: &PipelineName) -> String {
        format!("configmap {}/{}", self.namespace, Self::object_name(name))
    }

    fn encode(
        &self,
        doc: &PipelineDoc,
        version: Option<&Version>,
    ) -> Result<ConfigMap, StoreError> {
        let document = serde_json::to_string(doc).map_err(|e| StoreError::Unavailable {
            reason: format!("cannot encode document: {e}"),
        })?;
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(StoreError::Unavailable {
                reason: format!(
                    "document of {} is {} bytes, more than the {MAX_DOCUMENT_BYTES} a ConfigMap store accepts",
                    doc.name,
                    document.len()
                ),
            });
        }
        let mut data = views(doc);
        data.insert("document".into(), document);
        Ok(ConfigMap {
            metadata: ObjectMeta {
                name: Some(Self::object_name(&doc.name)),
                namespace: Some(self.namespace.clone()),
                resource_version: version.map(|v| v.as_str().to_string()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                    (PIPELINE_LABEL.to_string(), doc.name.to_string()),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        })
    }

    fn decode(&self, name: &PipelineName, cm: &ConfigMap) -> Result<Stored, StoreError> {
        decode_config_map(name, &self.location(name), cm)
    }

    async fn read(&self, name: &PipelineName) -> Result<Option<Stored>, StoreError> {
        match self.api.get_opt(&Self::object_name(name)).await {
            Ok(Some(cm)) => Ok(Some(self.decode(name, &cm)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// The document of `name` from its ConfigMap at `location`: the
/// `document` key, valid and of `name`, and every view key agreeing with
/// it.
pub fn decode_config_map(
    name: &PipelineName,
    location: &str,
    cm: &ConfigMap,
) -> Result<Stored, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location.to_string(),
        reason,
    };
    let data = cm.data.clone().unwrap_or_default();
    let document = data
        .get("document")
        .ok_or_else(|| corrupt("no `document` key".into()))?;
    let doc: PipelineDoc =
        serde_json::from_str(document).map_err(|e| corrupt(format!("`document`: {e}")))?;
    doc.validate().map_err(|e| corrupt(e.to_string()))?;
    if &doc.name != name {
        return Err(corrupt(format!("holds pipeline {}, not {name}", doc.name)));
    }
    for (key, expected) in views(&doc) {
        if data.get(&key) != Some(&expected) {
            return Err(corrupt(format!(
                "key `{key}` disagrees with `document` (the other keys are views of `document`: edit `document`)"
            )));
        }
    }
    let version = cm
        .metadata
        .resource_version
        .clone()
        .ok_or_else(|| corrupt("no resourceVersion".into()))?;
    Ok(Stored {
        version: Version::new(version),
        doc,
    })
}

/// The plain-words keys a ConfigMap holds beside `document` (views of it,
/// checked on every read).
pub fn views(doc: &PipelineDoc) -> BTreeMap<String, String> {
    let segments = doc
        .plan
        .timeline
        .segments()
        .iter()
        .map(|s| format!("{} {}", s.start, s.owner))
        .collect::<Vec<_>>()
        .join("\n");
    let transition = match &doc.transition {
        None => "none".to_string(),
        Some(t) => format!(
            "{} -> {} at {}, {}, allowed lateness {}, auto-promote {}, promoted {}",
            t.from, t.to, t.at, t.mode, t.allowed_lateness, t.auto_promote, t.promoted
        ),
    };
    let horizon: Key = doc.horizon();
    BTreeMap::from([
        ("schema".into(), doc.schema.to_string()),
        ("epoch".into(), doc.epoch().to_string()),
        ("active".into(), doc.active().to_string()),
        ("segments".into(), segments),
        ("horizon".into(), horizon.to_string()),
        ("compacted-below".into(), doc.compacted_below().to_string()),
        (
            "retired-below".into(),
            format!(
                "BLUE {}, GREEN {}",
                doc.plan.retired.blue, doc.plan.retired.green
            ),
        ),
        ("incarnation".into(), doc.incarnation().to_string()),
        (
            "phase".into(),
            doc.phase().map_or("none".into(), |p| p.to_string()),
        ),
        ("transition".into(), transition),
    ])
}

impl Store for ConfigMapStore {
    fn describe(&self) -> String {
        format!("configmap:{}", self.namespace)
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<PipelineName>, StoreError>> {
        Box::pin(async move {
            let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
            let list = self
                .api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(unavailable)?;
            let mut names: Vec<PipelineName> = list
                .items
                .iter()
                .filter_map(|cm| {
                    let label = cm.metadata.labels.as_ref()?.get(PIPELINE_LABEL)?;
                    PipelineName::new(label.as_str()).ok()
                })
                .collect();
            names.sort();
            Ok(names)
        })
    }

    fn load<'a>(
        &'a self,
        name: &'a PipelineName,
    ) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        Box::pin(self.read(name))
    }

    fn compare_and_swap<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: Option<&'a Version>,
        doc: &'a PipelineDoc,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        Box::pin(async move {
            let cm = self.encode(doc, expected)?;
            let written = match expected {
                None => self.api.create(&PostParams::default(), &cm).await,
                Some(_) => {
                    self.api
                        .replace(&Self::object_name(name), &PostParams::default(), &cm)
                        .await
                }
            };
            match written {
                Ok(cm) => {
                    let version =
                        cm.metadata
                            .resource_version
                            .ok_or_else(|| StoreError::Unavailable {
                                reason: "the API server returned no resourceVersion".into(),
                            })?;
                    Ok(CasOutcome::Written(Version::new(version)))
                }
                Err(e) if matches!(status_code(&e), Some(409 | 404)) => {
                    Ok(CasOutcome::Conflict(self.read(name).await?.map(Box::new)))
                }
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn delete<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: &'a Version,
    ) -> BoxFuture<'a, Result<DeleteOutcome, StoreError>> {
        Box::pin(async move {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(expected.as_str().to_string()),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match self.api.delete(&Self::object_name(name), &params).await {
                Ok(_) => Ok(DeleteOutcome::Deleted),
                Err(e) if matches!(status_code(&e), Some(409 | 404)) => Ok(
                    DeleteOutcome::Conflict(self.read(name).await?.map(Box::new)),
                ),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn watch(&self, name: &PipelineName) -> BoxStream<'static, Result<Option<Stored>, StoreError>> {
        let store = self.clone();
        let name = name.clone();
        let config = watcher::Config::default()
            .fields(&format!("metadata.name={}", Self::object_name(&name)));
        // During a (re-)list the object seen so far is kept until the list
        // is complete; then the current value is reported.
        let mut listing: Option<Option<ConfigMap>> = None;
        watcher(self.api.clone(), config)
            .default_backoff()
            .filter_map(move |event| {
                let out = match event {
                    // 410 Gone: the watcher re-lists on its own; the list
                    // reports the current value.
                    Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                        debug!(pipeline = %name, "watch expired (410); re-listing");
                        None
                    }
                    Err(e) => Some(Err(StoreError::Unavailable {
                        reason: format!("kubernetes watch: {e}"),
                    })),
                    Ok(watcher::Event::Init) => {
                        listing = Some(None);
                        None
                    }
                    Ok(watcher::Event::InitApply(cm)) => {
                        listing = Some(Some(cm));
                        None
                    }
                    Ok(watcher::Event::InitDone) => match listing.take().flatten() {
                        Some(cm) => Some(store.decode(&name, &cm).map(Some)),
                        None => Some(Ok(None)),
                    },
                    Ok(watcher::Event::Apply(cm)) => Some(store.decode(&name, &cm).map(Some)),
                    Ok(watcher::Event::Delete(_)) => Some(Ok(None)),
                };
                futures::future::ready(out)
            })
            .boxed()
    }

    fn put_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.put_record_object(collection, coordinator, value))
    }

    fn delete_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.delete_record_object(collection, coordinator))
    }

    fn watch_records(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        self.watch_record_objects(collection)
    }
}
