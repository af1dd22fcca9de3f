//! An in-memory store: for tests, simulations and several coordinators in
//! one process. Watches are `tokio::sync::watch` channels (latest value).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cutover_core::fleet::CoordinatorId;
use cutover_core::{PipelineDoc, PipelineName};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use super::{CasOutcome, Collection, DeleteOutcome, Records, Store, StoreError, Stored, Version};

/// Documents in a map, versions from a counter.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    revision: u64,
    docs: HashMap<PipelineName, watch::Sender<Option<Stored>>>,
    records: HashMap<Collection, watch::Sender<Records>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sender(inner: &mut Inner, name: &PipelineName) -> watch::Sender<Option<Stored>> {
        inner
            .docs
            .entry(name.clone())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    fn records(&self, collection: &Collection) -> watch::Sender<Records> {
        self.lock()
            .records
            .entry(collection.clone())
            .or_insert_with(|| watch::channel(Records::new()).0)
            .clone()
    }
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<PipelineName>, StoreError>> {
        let mut names: Vec<_> = self
            .lock()
            .docs
            .iter()
            .filter(|(_, tx)| tx.borrow().is_some())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        Box::pin(async move { Ok(names) })
    }

    fn load<'a>(
        &'a self,
        name: &'a PipelineName,
    ) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        let stored = self
            .lock()
            .docs
            .get(name)
            .and_then(|tx| tx.borrow().clone());
        Box::pin(async move { Ok(stored) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: Option<&'a Version>,
        doc: &'a PipelineDoc,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        let mut inner = self.lock();
        let tx = Self::sender(&mut inner, name);
        let current = tx.borrow().clone();
        let outcome = if current.as_ref().map(|s| &s.version) != expected {
            CasOutcome::Conflict(current.map(Box::new))
        } else {
            inner.revision += 1;
            let version = Version::new(inner.revision.to_string());
            tx.send_replace(Some(Stored {
                version: version.clone(),
                doc: doc.clone(),
            }));
            CasOutcome::Written(version)
        };
        Box::pin(async move { Ok(outcome) })
    }

    fn delete<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: &'a Version,
    ) -> BoxFuture<'a, Result<DeleteOutcome, StoreError>> {
        let mut inner = self.lock();
        let tx = Self::sender(&mut inner, name);
        let current = tx.borrow().clone();
        let outcome = if current.as_ref().map(|s| &s.version) != Some(expected) {
            DeleteOutcome::Conflict(current.map(Box::new))
        } else {
            tx.send_replace(None);
            DeleteOutcome::Deleted
        };
        Box::pin(async move { Ok(outcome) })
    }

    fn watch(&self, name: &PipelineName) -> BoxStream<'static, Result<Option<Stored>, StoreError>> {
        let rx = Self::sender(&mut self.lock(), name).subscribe();
        WatchStream::new(rx).map(Ok).boxed()
    }

    fn put_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.records(collection).send_modify(|records| {
            records.insert(coordinator.clone(), value);
        });
        Box::pin(async { Ok(()) })
    }

    fn delete_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.records(collection)
            .send_if_modified(|records| records.remove(coordinator).is_some());
        Box::pin(async { Ok(()) })
    }

    fn watch_records(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        WatchStream::new(self.records(collection).subscribe())
            .map(Ok)
            .boxed()
    }
}
