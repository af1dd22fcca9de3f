//! Parsing `--store` values into a store.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use cutover_coordinator::store::{FileStore, MemoryStore, Store};

/// Where pipeline documents live.
#[derive(Clone, Debug)]
pub enum StoreSpec {
    /// `file:PATH`: one JSON document per pipeline in PATH (embedded default).
    File(PathBuf),
    /// `memory`: nothing survives the process (tests, trials).
    Memory,
}

impl FromStr for StoreSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        if s == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                bail!("file store needs a folder: file:PATH");
            }
            return Ok(StoreSpec::File(PathBuf::from(path)));
        }
        bail!("unknown store {s:?}: expected file:PATH or memory")
    }
}

impl StoreSpec {
    /// Opens the store.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            StoreSpec::File(path) => Arc::new(
                FileStore::open(path)
                    .with_context(|| format!("opening file store {}", path.display()))?,
            ),
            StoreSpec::Memory => Arc::new(MemoryStore::new()),
        })
    }
}
