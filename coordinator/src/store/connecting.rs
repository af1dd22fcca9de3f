//! A store that is still connecting: a coordinator starts (reporting
//! NOT_SERVING) before its store answers, instead of exiting. An operation
//! waits for the first connection attempt to finish; while no attempt has
//! succeeded it fails with `Unavailable` (naming the last connection
//! error); watches wait for a connection. Attempts are retried with
//! exponential back-off.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover_core::fleet::CoordinatorId;
use cutover_core::{PipelineDoc, PipelineName};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{CasOutcome, Collection, DeleteOutcome, Records, Store, StoreError, Stored, Version};
use crate::log_limit::{RepeatLimiter, Verdict};

/// A store behind connection attempts.
pub struct ConnectingStore {
    description: String,
    connected: watch::Sender<Option<Arc<dyn Store>>>,
    attempted: watch::Sender<bool>,
    last_error: Mutex<String>,
}

impl ConnectingStore {
    /// Starts connecting with `connect` (on the current tokio runtime),
    /// waiting `min` after the first failure, doubling up to `max`.
    pub fn spawn<F, Fut>(description: String, connect: F, min: Duration, max: Duration) -> Arc<Self>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn Store>, StoreError>> + Send,
    {
        let store = Arc::new(ConnectingStore {
            description,
            connected: watch::channel(None).0,
            attempted: watch::channel(false).0,
            last_error: Mutex::new("no connection attempt finished yet".into()),
        });
        let task = Arc::downgrade(&store);
        tokio::spawn(async move {
            let mut wait = min;
            let mut failures = RepeatLimiter::new(Duration::from_secs(30));
            loop {
                let attempt = connect().await;
                let Some(store) = task.upgrade() else { return };
                match attempt {
                    Ok(connected) => {
                        info!(store = %store.description, "store connected");
                        store.connected.send_replace(Some(connected));
                        store.attempted.send_replace(true);
                        return;
                    }
                    Err(e) => {
                        let message = e.to_string();
                        if let Verdict::Log { suppressed } =
                            failures.occurred(&message, Instant::now())
                        {
                            warn!(store = %store.description, error = %message, suppressed, "cannot reach the store; retrying");
                        }
                        *store.last_error.lock().unwrap_or_else(|p| p.into_inner()) = message;
                    }
                }
                store.attempted.send_replace(true);
                drop(store);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(max);
            }
        });
        store
    }

    /// The connected store, once the first attempt finished.
    async fn current(&self) -> Result<Arc<dyn Store>, StoreError> {
        let mut attempted = self.attempted.subscribe();
        // An error means the connecting task is gone: answer from what is.
        let _ = attempted.wait_for(|&done| done).await;
        self.connected
            .borrow()
            .clone()
            .ok_or_else(|| StoreError::Unavailable {
                reason: format!(
                    "{} is not connected yet: {}",
                    self.description,
                    self.last_error.lock().unwrap_or_else(|p| p.into_inner())
                ),
            })
    }
}

impl ConnectingStore {
    /// The stream `open` makes of the connected store, once it is connected.
    fn once_connected<T: Send + 'static>(
        &self,
        open: impl FnOnce(Arc<dyn Store>) -> BoxStream<'static, T> + Send + 'static,
    ) -> BoxStream<'static, T> {
        let mut connected = self.connected.subscribe();
        futures::stream::once(async move {
            let store = connected
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|s| s.clone());
            match store {
                Some(store) => open(store),
                None => futures::stream::empty().boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

impl Store for ConnectingStore {
    fn describe(&self) -> String {
        match self.connected.borrow().as_ref() {
            Some(store) => store.describe(),
            None => self.description.clone(),
        }
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<PipelineName>, StoreError>> {
        Box::pin(async move { self.current().await?.list().await })
    }

    fn load<'a>(
        &'a self,
        name: &'a PipelineName,
    ) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        Box::pin(async move { self.current().await?.load(name).await })
    }

    fn compare_and_swap<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: Option<&'a Version>,
        doc: &'a PipelineDoc,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        Box::pin(async move {
            self.current()
                .await?
                .compare_and_swap(name, expected, doc)
                .await
        })
    }

    fn delete<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: &'a Version,
    ) -> BoxFuture<'a, Result<DeleteOutcome, StoreError>> {
        Box::pin(async move { self.current().await?.delete(name, expected).await })
    }

    fn watch(&self, name: &PipelineName) -> BoxStream<'static, Result<Option<Stored>, StoreError>> {
        let name = name.clone();
        self.once_connected(move |store| store.watch(&name))
    }

    fn put_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.current()
                .await?
                .put_record(collection, coordinator, value)
                .await
        })
    }

    fn delete_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.current()
                .await?
                .delete_record(collection, coordinator)
                .await
        })
    }

    fn watch_records(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        let collection = collection.clone();
        self.once_connected(move |store| store.watch_records(&collection))
    }
}
