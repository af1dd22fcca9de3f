//! The durable source of truth: one trait, several backends.
//!
//! A store holds one [`PipelineDoc`] per pipeline with an opaque version.
//! Writers use [`Store::compare_and_swap`]: a write succeeds only if the
//! stored version is still the one the writer read; otherwise the caller
//! reloads, re-validates and retries. Watches report the stored value each
//! time it changes (latest value, not every intermediate write).
//!
//! Beside the documents, a store keeps small *fleet records* for several
//! coordinators serving the same pipelines (see `cutover_core::fleet`):
//! per pipeline, each coordinator's serving report, and per coordinator a
//! liveness record (a renewal counter). Each record has one writer, so they
//! are written without compare-and-swap, and watched as a whole collection.

mod configmap;
mod configmap_records;
mod connecting;
mod etcd;
mod etcd_records;
mod file;
mod file_records;
mod memory;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use cutover_core::fleet::CoordinatorId;
use cutover_core::{PipelineDoc, PipelineName};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use configmap::{
    ConfigMapStore, MANAGED_BY, MAX_DOCUMENT_BYTES, PIPELINE_LABEL, decode_config_map, views,
};
pub use configmap_records::{COORDINATOR_ANNOTATION, FLEET_LABEL, OwnerPod, REPORT_OF_LABEL};
pub use connecting::ConnectingStore;
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls, decode_etcd_value};
pub use file::{FileStore, MAX_WATCH_BACKOFF, decode_file_document};
pub use memory::MemoryStore;

/// Opaque version of a stored document (a revision counter, an etcd mod
/// revision, a Kubernetes resourceVersion).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// A version from its textual form.
    pub fn new(version: impl Into<String>) -> Self {
        Version(version.into())
    }

    /// The textual form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document with the version it is stored at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Version to compare against on the next write.
    pub version: Version,
    /// The document.
    pub doc: PipelineDoc,
}

/// Result of a compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written; the document is now stored at this version.
    Written(Version),
    /// The stored version was not the expected one; this is what is stored
    /// now (`None`: nothing).
    Conflict(Option<Box<Stored>>),
}

/// Result of a compare-and-swap delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted.
    Deleted,
    /// The stored version was not the expected one; this is what is stored
    /// now (`None`: nothing).
    Conflict(Option<Box<Stored>>),
}

/// Why a store operation failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Stored content cannot be read as a pipeline document. It is never
    /// overwritten: an operator must repair or remove it.
    #[error(
        "corrupt pipeline state at {location}: {reason} (not overwritten; repair or remove it)"
    )]
    Corrupt {
        /// Where (a file path, a key).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was attempted.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The backend cannot be reached or refused the operation.
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The store's settings contradict each other (found before connecting).
    #[error("store misconfigured: {reason}")]
    Misconfigured {
        /// What is wrong.
        reason: String,
    },
}

/// A collection of fleet records, each named by the coordinator that writes
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// The coordinators' serving reports of one pipeline.
    Reports(PipelineName),
    /// The coordinators' liveness records.
    Liveness,
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Collection::Reports(pipeline) => write!(f, "reports of {pipeline}"),
            Collection::Liveness => f.write_str("liveness records"),
        }
    }
}

/// The records of a collection, by coordinator.
pub type Records = BTreeMap<CoordinatorId, Vec<u8>>;

/// Load, compare-and-swap on a version, watch; and the fleet records.
pub trait Store: Send + Sync + 'static {
    /// A short description for logs (`file:/var/lib/cutover`).
    fn describe(&self) -> String;

    /// Names of every stored pipeline.
    fn list(&self) -> BoxFuture<'_, Result<Vec<PipelineName>, StoreError>>;

    /// The stored document of `name`, if any.
    fn load<'a>(
        &'a self,
        name: &'a PipelineName,
    ) -> BoxFuture<'a, Result<Option<Stored>, StoreError>>;

    /// Writes `doc` if the stored version is `expected` (`None`: only if
    /// nothing is stored).
    fn compare_and_swap<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: Option<&'a Version>,
        doc: &'a PipelineDoc,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>>;

    /// Deletes the document of `name` if it is stored at `expected`.
    fn delete<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: &'a Version,
    ) -> BoxFuture<'a, Result<DeleteOutcome, StoreError>>;

    /// The stored value of `name` each time it changes, starting with the
    /// current one. Intermediate values may be skipped.
    fn watch(&self, name: &PipelineName) -> BoxStream<'static, Result<Option<Stored>, StoreError>>;

    /// Writes `coordinator`'s record in `collection` (replacing it).
    fn put_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes `coordinator`'s record from `collection` (nothing if absent).
    fn delete_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every record of `collection` each time one changes, starting with
    /// the current ones. Intermediate values may be skipped.
    fn watch_records(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>>;
}
