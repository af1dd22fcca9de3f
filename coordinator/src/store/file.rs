//! The embedded default store: one JSON document per pipeline in a folder.
//!
//! `<dir>/<pipeline>.json` holds `{"revision": N, "document": {...}}`. A
//! write takes an exclusive advisory lock on `<dir>/<pipeline>.lock` (so
//! several processes may share the folder), checks the revision, writes a
//! temporary file, fsyncs it, renames it over the document and fsyncs the
//! folder. A document that does not parse is reported with its path and never
//! overwritten. Watches poll the file (changes made by this process are seen
//! by the coordinator directly); after a failed read a watch waits longer
//! each time (up to [`MAX_WATCH_BACKOFF`]) instead of spinning.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_core::{PipelineDoc, PipelineName, UnknownFields};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use cutover_core::fleet::CoordinatorId;

use super::{CasOutcome, Collection, DeleteOutcome, Records, Store, StoreError, Stored, Version};

/// A folder of JSON documents.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
    fsync: bool,
    poll: Duration,
}

/// Longest wait between two reads of a watch whose reads keep failing.
pub const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize)]
struct Envelope {
    revision: u64,
    document: PipelineDoc,
    /// Fields a newer version wrote; kept on every write.
    #[serde(flatten)]
    unknown: UnknownFields,
}

/// The document of `name` from the bytes of its file at `location`: an
/// envelope with the store's revision and the document, which must be
/// valid and of `name`.
pub fn decode_file_document(
    name: &PipelineName,
    location: &str,
    bytes: &[u8],
) -> Result<Stored, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location.to_string(),
        reason,
    };
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    envelope
        .document
        .validate()
        .map_err(|e| corrupt(e.to_string()))?;
    if &envelope.document.name != name {
        return Err(corrupt(format!(
            "holds pipeline {}, not {name}",
            envelope.document.name
        )));
    }
    Ok(Stored {
        version: Version::new(envelope.revision.to_string()),
        doc: envelope.document,
    })
}

impl FileStore {
    /// A store in `dir`, created if missing. Writes are fsynced.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            operation: "create directory",
            path: dir.clone(),
            source,
        })?;
        Ok(FileStore {
            dir,
            fsync: true,
            poll: Duration::from_millis(200),
        })
    }

    /// Skips fsync (tests and simulations on throw-away folders only: a
    /// crash may then lose the latest write).
    pub fn without_fsync(mut self) -> Self {
        self.fsync = false;
        self
    }

    /// How often watches look at the file for changes made by others.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How often watches read the folder.
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// Path of the document of `name`.
    pub fn path_of(&self, name: &PipelineName) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Reads the document of `name` (blocking).
    pub fn load_blocking(&self, name: &PipelineName) -> Result<Option<Stored>, StoreError> {
        let path = self.path_of(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if path.is_dir() => {
                return Err(StoreError::Corrupt {
                    location: path.display().to_string(),
                    reason: format!("a directory, not a pipeline document ({e})"),
                });
            }
            Err(source) => {
                return Err(StoreError::Io {
                    operation: "read",
                    path,
                    source,
                });
            }
        };
        decode_file_document(name, &path.display().to_string(), &bytes).map(Some)
    }

    /// The fields of the envelope at `path` this version does not know.
    fn unknown_envelope_fields(path: &Path) -> UnknownFields {
        let Ok(bytes) = fs::read(path) else {
            return UnknownFields::new();
        };
        serde_json::from_slice::<Envelope>(&bytes)
            .map(|e| e.unknown)
            .unwrap_or_default()
    }

    /// Compare-and-swap (blocking).
    pub fn compare_and_swap_blocking(
        &self,
        name: &PipelineName,
        expected: Option<&Version>,
        doc: &PipelineDoc,
    ) -> Result<CasOutcome, StoreError> {
        let io = |operation, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io {
                operation,
                path,
                source,
            }
        };
        let lock = self.lock(name)?;
        let current = self.load_blocking(name)?;
        if current.as_ref().map(|s| &s.version) != expected {
            return Ok(CasOutcome::Conflict(current.map(Box::new)));
        }
        let revision = match &current {
            Some(stored) => stored.version.as_str().parse::<u64>().unwrap_or(0) + 1,
            None => 1,
        };
        let path = self.path_of(name);
        let tmp = self.dir.join(format!(".{name}.json.tmp"));
        let bytes = serde_json::to_vec_pretty(&Envelope {
            revision,
            document: doc.clone(),
            unknown: Self::unknown_envelope_fields(&path),
        })
        .map_err(|e| StoreError::Unavailable {
            reason: format!("cannot encode document: {e}"),
        })?;
        {
            let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
            file.write_all(&bytes).map_err(io("write", &tmp))?;
            if self.fsync {
                file.sync_all().map_err(io("fsync", &tmp))?;
            }
        }
        fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        if self.fsync {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io("fsync", &self.dir))?;
        }
        drop(lock);
        Ok(CasOutcome::Written(Version::new(revision.to_string())))
    }

    /// Compare-and-swap delete (blocking).
    pub fn delete_blocking(
        &self,
        name: &PipelineName,
        expected: &Version,
    ) -> Result<DeleteOutcome, StoreError> {
        let _lock = self.lock(name)?;
        let current = self.load_blocking(name)?;
        if current.as_ref().map(|s| &s.version) != Some(expected) {
            return Ok(DeleteOutcome::Conflict(current.map(Box::new)));
        }
        let path = self.path_of(name);
        fs::remove_file(&path).map_err(|source| StoreError::Io {
            operation: "remove",
            path,
            source,
        })?;
        Ok(DeleteOutcome::Deleted)
    }

    /// Takes the folder-wide advisory lock of `name` (released on drop).
    fn lock(&self, name: &PipelineName) -> Result<File, StoreError> {
        let lock_path = self.dir.join(format!("{name}.lock"));
        let io = |operation| {
            let path = lock_path.clone();
            move |source| StoreError::Io {
                operation,
                path,
                source,
            }
        };
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open lock"))?;
        lock.lock().map_err(io("lock"))?;
        Ok(lock)
    }

    fn list_blocking(&self) -> Result<Vec<PipelineName>, StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| StoreError::Io {
            operation: "list",
            path: self.dir.clone(),
            source,
        })?;
        let mut names: Vec<PipelineName> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                let stem = file.strip_suffix(".json")?;
                PipelineName::new(stem).ok()
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable {
            reason: format!("store task failed: {e}"),
        })?
}

impl Store for FileStore {
    fn describe(&self) -> String {
        format!("file:{}", self.dir.display())
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<PipelineName>, StoreError>> {
        let store = self.clone();
        Box::pin(blocking(move || store.list_blocking()))
    }

    fn load<'a>(
        &'a self,
        name: &'a PipelineName,
    ) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        let (store, name) = (self.clone(), name.clone());
        Box::pin(blocking(move || store.load_blocking(&name)))
    }

    fn compare_and_swap<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: Option<&'a Version>,
        doc: &'a PipelineDoc,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        let (store, name, expected, doc) =
            (self.clone(), name.clone(), expected.cloned(), doc.clone());
        Box::pin(blocking(move || {
            store.compare_and_swap_blocking(&name, expected.as_ref(), &doc)
        }))
    }

    fn delete<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: &'a Version,
    ) -> BoxFuture<'a, Result<DeleteOutcome, StoreError>> {
        let (store, name, expected) = (self.clone(), name.clone(), expected.clone());
        Box::pin(blocking(move || store.delete_blocking(&name, &expected)))
    }

    fn watch(&self, name: &PipelineName) -> BoxStream<'static, Result<Option<Stored>, StoreError>> {
        let (store, name) = (self.clone(), name.clone());
        // (version last reported, wait before the next read after a failure)
        let state: (Option<Option<Version>>, Option<Duration>) = (None, None);
        futures::stream::unfold(state, move |(last, failing)| {
            let (store, name) = (store.clone(), name.clone());
            async move {
                if let Some(wait) = failing {
                    tokio::time::sleep(wait).await;
                }
                loop {
                    let loaded = blocking({
                        let (store, name) = (store.clone(), name.clone());
                        move || store.load_blocking(&name)
                    })
                    .await;
                    match loaded {
                        Err(e) => {
                            let wait = failing.map_or(store.poll, |w| w * 2).min(MAX_WATCH_BACKOFF);
                            return Some((Err(e), (None, Some(wait))));
                        }
                        Ok(stored) => {
                            let version = stored.as_ref().map(|s| s.version.clone());
                            if last.as_ref() != Some(&version) {
                                return Some((Ok(stored), (Some(version), None)));
                            }
                        }
                    }
                    tokio::time::sleep(store.poll).await;
                }
            }
        })
        .boxed()
    }

    fn put_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (store, collection, coordinator) =
            (self.clone(), collection.clone(), coordinator.clone());
        Box::pin(blocking(move || {
            store.put_record_blocking(&collection, &coordinator, &value)
        }))
    }

    fn delete_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (store, collection, coordinator) =
            (self.clone(), collection.clone(), coordinator.clone());
        Box::pin(blocking(move || {
            store.delete_record_blocking(&collection, &coordinator)
        }))
    }

    fn watch_records(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        self.watch_records_polling(collection)
    }
}
