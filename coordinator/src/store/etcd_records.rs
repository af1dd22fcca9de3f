//! The etcd store's fleet records: `<prefix minus its slash>.fleet/<collection>/<coordinator>`
//! (for the default prefix `/cutover/pipelines/`, the liveness records are
//! under `/cutover/pipelines.fleet/liveness/` and the reports of `orders`
//! under `/cutover/pipelines.fleet/reports/orders/`), outside the
//! documents' prefix. A watch reads the collection, then follows its prefix
//! from the next revision, reporting the whole collection after each batch
//! of events; it re-reads after a compaction or a broken watch.

use std::time::Duration;

use cutover_core::fleet::CoordinatorId;
use etcd_client::{EventType, GetOptions, WatchOptions};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

use super::etcd::{EtcdStore, unavailable};
use super::{Collection, Records, StoreError};

impl EtcdStore {
    /// The key prefix of `collection` (ends with `/`).
    pub fn records_prefix(&self, collection: &Collection) -> String {
        let base = self.prefix().trim_end_matches('/');
        match collection {
            Collection::Reports(pipeline) => format!("{base}.fleet/reports/{pipeline}/"),
            Collection::Liveness => format!("{base}.fleet/liveness/"),
        }
    }

    pub(super) async fn put_record_value(
        &self,
        collection: &Collection,
        coordinator: &CoordinatorId,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let key = format!("{}{coordinator}", self.records_prefix(collection));
        self.client()
            .put(key, value, None)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub(super) async fn delete_record_value(
        &self,
        collection: &Collection,
        coordinator: &CoordinatorId,
    ) -> Result<(), StoreError> {
        let key = format!("{}{coordinator}", self.records_prefix(collection));
        self.client().delete(key, None).await.map_err(unavailable)?;
        Ok(())
    }

    /// The records of `collection` and the revision they were read at.
    async fn read_records(&self, collection: &Collection) -> Result<(Records, i64), StoreError> {
        let prefix = self.records_prefix(collection);
        let response = self
            .client()
            .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(unavailable)?;
        let revision = response.header().map_or(0, |h| h.revision());
        let records = response
            .kvs()
            .iter()
            .filter_map(|kv| Some((record_id(&prefix, kv.key())?, kv.value().to_vec())))
            .collect();
        Ok((records, revision))
    }

    pub(super) fn watch_records_prefix(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(watch_collection(self.clone(), collection.clone(), tx));
        ReceiverStream::new(rx).boxed()
    }
}

fn record_id(prefix: &str, key: &[u8]) -> Option<CoordinatorId> {
    let key = std::str::from_utf8(key).ok()?;
    CoordinatorId::new(key.strip_prefix(prefix)?).ok()
}

/// Feeds `tx` until the receiver is dropped.
async fn watch_collection(
    store: EtcdStore,
    collection: Collection,
    tx: mpsc::Sender<Result<Records, StoreError>>,
) {
    let prefix = store.records_prefix(&collection);
    let mut retry = Duration::from_millis(100);
    loop {
        let (mut records, revision) = match store.read_records(&collection).await {
            Ok(read) => read,
            Err(e) => {
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if tx.send(Ok(records.clone())).await.is_err() {
            return;
        }
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = match store.client().watch(prefix.clone(), Some(options)).await {
            Ok(stream) => stream,
            Err(e) => {
                debug!(%collection, error = %e, "etcd watch failed; re-reading");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        retry = Duration::from_millis(100);
        while let Ok(Some(response)) = stream.message().await {
            if response.canceled() {
                break;
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let Some(id) = record_id(&prefix, kv.key()) else {
                    continue;
                };
                match event.event_type() {
                    EventType::Put => records.insert(id, kv.value().to_vec()),
                    EventType::Delete => records.remove(&id),
                };
            }
            if tx.send(Ok(records.clone())).await.is_err() {
                return;
            }
        }
    }
}
