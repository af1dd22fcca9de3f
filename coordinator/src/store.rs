//! The durable source of truth: one trait, several backends.
//!
//! A store holds one [`PipelineDoc`] per pipeline with an opaque version.
//! Writers use [`Store::compare_and_swap`]: a write succeeds only if the
//! stored version is still the one the writer read; otherwise the caller
//! reloads, re-validates and retries. Watches report the stored value each
//! time it changes (latest value, not every intermediate write).

mod configmap;
mod connecting;
mod etcd;
mod file;
mod memory;

use std::fmt;
use std::path::PathBuf;

use cutover_core::{PipelineDoc, PipelineName};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use configmap::{ConfigMapStore, MANAGED_BY, MAX_DOCUMENT_BYTES, PIPELINE_LABEL, views};
pub use connecting::ConnectingStore;
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls};
pub use file::{FileStore, MAX_WATCH_BACKOFF};
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

/// Load, compare-and-swap on a version, watch.
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
}
