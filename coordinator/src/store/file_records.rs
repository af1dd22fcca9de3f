//! The file store's fleet records: `<dir>/.fleet/<collection>/<coordinator>`
//! (collection `liveness`, or `reports.<pipeline>`), each written to a
//! temporary file and renamed over the record, so a reader never sees half
//! a record. A watch polls the folder and reports the whole collection when
//! any record changed.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use cutover_core::fleet::CoordinatorId;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::file::{FileStore, MAX_WATCH_BACKOFF};
use super::{Collection, Records, StoreError};

fn io(operation: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io {
        operation,
        path,
        source,
    }
}

impl FileStore {
    /// The folder of `collection`.
    pub fn records_dir(&self, collection: &Collection) -> PathBuf {
        let name = match collection {
            Collection::Reports(pipeline) => format!("reports.{pipeline}"),
            Collection::Liveness => "liveness".into(),
        };
        self.dir().join(".fleet").join(name)
    }

    pub(super) fn put_record_blocking(
        &self,
        collection: &Collection,
        coordinator: &CoordinatorId,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let dir = self.records_dir(collection);
        fs::create_dir_all(&dir).map_err(io("create directory", dir.clone()))?;
        let path = dir.join(coordinator.as_str());
        let tmp = dir.join(format!(".{coordinator}.tmp"));
        let mut file = fs::File::create(&tmp).map_err(io("create", tmp.clone()))?;
        file.write_all(value).map_err(io("write", tmp.clone()))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io("rename", path))
    }

    pub(super) fn delete_record_blocking(
        &self,
        collection: &Collection,
        coordinator: &CoordinatorId,
    ) -> Result<(), StoreError> {
        let path = self.records_dir(collection).join(coordinator.as_str());
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(e)),
            _ => Ok(()),
        }
    }

    /// Every record of `collection` (files whose names are not coordinator
    /// ids, such as temporary files, are skipped).
    pub(super) fn read_records_blocking(
        &self,
        collection: &Collection,
    ) -> Result<Records, StoreError> {
        let dir = self.records_dir(collection);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Records::new()),
            Err(e) => return Err(io("list", dir)(e)),
        };
        let mut records = Records::new();
        for entry in entries.filter_map(Result::ok) {
            let Some(id) = entry
                .file_name()
                .into_string()
                .ok()
                .and_then(|name| CoordinatorId::new(name).ok())
            else {
                continue;
            };
            match fs::read(entry.path()) {
                Ok(bytes) => {
                    records.insert(id, bytes);
                }
                // Removed between the listing and the read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("read", entry.path())(e)),
            }
        }
        Ok(records)
    }

    pub(super) fn watch_records_polling(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        let (store, collection) = (self.clone(), collection.clone());
        // (records last reported, wait before the next read after a failure)
        let state: (Option<Records>, Option<Duration>) = (None, None);
        futures::stream::unfold(state, move |(last, failing)| {
            let (store, collection) = (store.clone(), collection.clone());
            async move {
                if let Some(wait) = failing {
                    tokio::time::sleep(wait).await;
                }
                loop {
                    let read = tokio::task::spawn_blocking({
                        let (store, collection) = (store.clone(), collection.clone());
                        move || store.read_records_blocking(&collection)
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Err(StoreError::Unavailable {
                            reason: format!("store task failed: {e}"),
                        })
                    });
                    match read {
                        Err(e) => {
                            let wait = failing
                                .map_or(store.poll_interval(), |w| w * 2)
                                .min(MAX_WATCH_BACKOFF);
                            return Some((Err(e), (last, Some(wait))));
                        }
                        Ok(records) if last.as_ref() != Some(&records) => {
                            return Some((Ok(records.clone()), (Some(records), None)));
                        }
                        Ok(_) => {}
                    }
                    tokio::time::sleep(store.poll_interval()).await;
                }
            }
        })
        .boxed()
    }
}
