//! The ConfigMap store's fleet records: one small ConfigMap per record,
//! `cutover-fleet-<hash>` in the store's namespace, labelled
//! `cutover.dev/fleet=liveness` or `cutover.dev/fleet=report` with
//! `cutover.dev/report-of=<pipeline>`; the coordinator id is in the
//! annotation `cutover.dev/coordinator` and the record in the `record` key.
//! When the store knows the coordinator's Pod, each record is owned by it
//! and is garbage-collected with it. A watch lists and follows the
//! collection's label selector (re-listing after 410 Gone) and reports the
//! whole collection after each change.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use cutover_core::fleet::CoordinatorId;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;

use super::configmap::{ConfigMapStore, status_code, unavailable};
use super::{Collection, Records, StoreError};

/// Label telling a fleet record's collection kind.
pub const FLEET_LABEL: &str = "cutover.dev/fleet";
/// Label of a report's pipeline.
pub const REPORT_OF_LABEL: &str = "cutover.dev/report-of";
/// Annotation holding a record's coordinator id.
pub const COORDINATOR_ANNOTATION: &str = "cutover.dev/coordinator";

/// The Pod a coordinator runs in, owning its records.
#[derive(Clone, Debug)]
pub struct OwnerPod {
    /// Pod name.
    pub name: String,
    /// Pod uid.
    pub uid: String,
}

fn labels(collection: &Collection) -> BTreeMap<String, String> {
    match collection {
        Collection::Reports(pipeline) => BTreeMap::from([
            (FLEET_LABEL.to_string(), "report".to_string()),
            (REPORT_OF_LABEL.to_string(), pipeline.to_string()),
        ]),
        Collection::Liveness => BTreeMap::from([(FLEET_LABEL.to_string(), "liveness".to_string())]),
    }
}

fn selector(collection: &Collection) -> String {
    labels(collection)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A stable object name for the record (ids may hold characters object
/// names cannot).
fn object_name(collection: &Collection, coordinator: &CoordinatorId) -> String {
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    collection.to_string().hash(&mut hash);
    coordinator.as_str().hash(&mut hash);
    format!("cutover-fleet-{:016x}", hash.finish())
}

fn record_of(cm: &ConfigMap) -> Option<(CoordinatorId, Vec<u8>)> {
    let id = cm
        .metadata
        .annotations
        .as_ref()?
        .get(COORDINATOR_ANNOTATION)?;
    let value = cm.data.as_ref()?.get("record")?;
    Some((
        CoordinatorId::new(id.as_str()).ok()?,
        value.clone().into_bytes(),
    ))
}

impl ConfigMapStore {
    pub(super) async fn put_record_object(
        &self,
        collection: &Collection,
        coordinator: &CoordinatorId,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let name = object_name(collection, coordinator);
        let record = String::from_utf8(value).map_err(|_| StoreError::Unavailable {
            reason: "a fleet record must be UTF-8".into(),
        })?;
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace().to_string()),
                labels: Some(labels(collection)),
                annotations: Some(BTreeMap::from([(
                    COORDINATOR_ANNOTATION.to_string(),
                    coordinator.to_string(),
                )])),
                owner_references: self.owner().map(|pod| {
                    vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        name: pod.name.clone(),
                        uid: pod.uid.clone(),
                        ..OwnerReference::default()
                    }]
                }),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("record".to_string(), record)])),
            ..ConfigMap::default()
        };
        // One writer per record: replace unconditionally, create if absent.
        match self.api().replace(&name, &PostParams::default(), &cm).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => {
                match self.api().create(&PostParams::default(), &cm).await {
                    Ok(_) => Ok(()),
                    Err(e) if status_code(&e) == Some(409) => self
                        .api()
                        .replace(&name, &PostParams::default(), &cm)
                        .await
                        .map(|_| ())
                        .map_err(unavailable),
                    Err(e) => Err(unavailable(e)),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    pub(super) async fn delete_record_object(
        &self,
        collection: &Collection,
        coordinator: &CoordinatorId,
    ) -> Result<(), StoreError> {
        let name = object_name(collection, coordinator);
        match self.api().delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    pub(super) fn watch_record_objects(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        let config = watcher::Config::default().labels(&selector(collection));
        // Object name -> record; during a (re-)list the new set is built
        // aside and replaces the old one when complete.
        let mut current: BTreeMap<String, (CoordinatorId, Vec<u8>)> = BTreeMap::new();
        let mut listing: Option<BTreeMap<String, (CoordinatorId, Vec<u8>)>> = None;
        let records = |map: &BTreeMap<String, (CoordinatorId, Vec<u8>)>| -> Records {
            map.values().cloned().collect()
        };
        watcher(self.api().clone(), config)
            .default_backoff()
            .filter_map(move |event| {
                let name_of = |cm: &ConfigMap| cm.metadata.name.clone().unwrap_or_default();
                let out = match event {
                    Err(watcher::Error::WatchError(status)) if status.code == 410 => None,
                    Err(e) => Some(Err(StoreError::Unavailable {
                        reason: format!("kubernetes watch: {e}"),
                    })),
                    Ok(watcher::Event::Init) => {
                        listing = Some(BTreeMap::new());
                        None
                    }
                    Ok(watcher::Event::InitApply(cm)) => {
                        if let (Some(listing), Some(record)) = (listing.as_mut(), record_of(&cm)) {
                            listing.insert(name_of(&cm), record);
                        }
                        None
                    }
                    Ok(watcher::Event::InitDone) => {
                        current = listing.take().unwrap_or_default();
                        Some(Ok(records(&current)))
                    }
                    Ok(watcher::Event::Apply(cm)) => {
                        match record_of(&cm) {
                            Some(record) => current.insert(name_of(&cm), record),
                            None => current.remove(&name_of(&cm)),
                        };
                        Some(Ok(records(&current)))
                    }
                    Ok(watcher::Event::Delete(cm)) => {
                        current.remove(&name_of(&cm));
                        Some(Ok(records(&current)))
                    }
                };
                futures::future::ready(out)
            })
            .boxed()
    }
}
