//! Pipelines whose stored state cannot be read. One corrupt document (or a
//! stray directory named like one) must not take the other pipelines down:
//! the coordinator serves every healthy pipeline, answers DATA_LOSS for a
//! broken one with its location, lists it, reports it on health and in a
//! metric, and never writes over it. A repaired document is served again
//! the next time it is read (a request, or the store watch of a pipeline
//! that was being served).

use std::collections::BTreeMap;

use cutover_core::PipelineName;
use tokio::sync::watch;

use crate::store::StoreError;

/// Why a pipeline's state cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// Where the state is (a file path, an etcd key, a ConfigMap).
    pub location: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Broken {
    /// The broken state of a store error that makes a pipeline unreadable
    /// (corrupt content, or a file that cannot be read as one), if it is
    /// one; a store that cannot be reached is not.
    pub fn of(error: &StoreError) -> Option<Broken> {
        match error {
            StoreError::Corrupt { location, reason } => Some(Broken {
                location: location.clone(),
                reason: reason.clone(),
            }),
            StoreError::Io {
                operation,
                path,
                source,
            } => Some(Broken {
                location: path.display().to_string(),
                reason: format!("{operation}: {source}"),
            }),
            StoreError::Unavailable { .. } | StoreError::Misconfigured { .. } => None,
        }
    }

    /// The error requests for the pipeline answer with (DATA_LOSS).
    pub fn error(&self) -> StoreError {
        StoreError::Corrupt {
            location: self.location.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// The broken pipelines of a coordinator, as a latest-value channel.
#[derive(Debug)]
pub struct BrokenPipelines {
    current: watch::Sender<BTreeMap<PipelineName, Broken>>,
}

impl Default for BrokenPipelines {
    fn default() -> Self {
        BrokenPipelines {
            current: watch::channel(BTreeMap::new()).0,
        }
    }
}

impl BrokenPipelines {
    /// Marks `name` broken; whether that is news.
    pub fn mark(&self, name: &PipelineName, broken: Broken) -> bool {
        self.current.send_if_modified(|map| {
            if map.get(name) == Some(&broken) {
                return false;
            }
            map.insert(name.clone(), broken);
            true
        })
    }

    /// Marks `name` readable again; whether it was broken.
    pub fn clear(&self, name: &PipelineName) -> bool {
        self.current
            .send_if_modified(|map| map.remove(name).is_some())
    }

    /// Why `name` is broken, if it is.
    pub fn get(&self, name: &PipelineName) -> Option<Broken> {
        self.current.borrow().get(name).cloned()
    }

    /// Every broken pipeline, sorted by name.
    pub fn all(&self) -> BTreeMap<PipelineName, Broken> {
        self.current.borrow().clone()
    }

    /// The broken pipelines now and on every change.
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<PipelineName, Broken>> {
        self.current.subscribe()
    }
}
