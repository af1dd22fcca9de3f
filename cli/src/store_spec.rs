//! Parsing `--store` values into a store.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use cutover_coordinator::store::{
    ConfigMapStore, EtcdOptions, EtcdStore, FileStore, MemoryStore, Store,
};

/// Default etcd key prefix.
pub const DEFAULT_ETCD_PREFIX: &str = "/cutover/pipelines/";

/// Where pipeline documents live.
#[derive(Clone, Debug)]
pub enum StoreSpec {
    /// `file:PATH`: one JSON document per pipeline in PATH (embedded default).
    File(PathBuf),
    /// `memory`: nothing survives the process (tests, trials).
    Memory,
    /// `etcd:URL[,URL...]`: one key per pipeline under a prefix.
    Etcd(Vec<String>),
    /// `configmap[:NAMESPACE]`: one ConfigMap per pipeline (in-cluster
    /// config or kubeconfig; the client's namespace by default).
    ConfigMap(Option<String>),
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
        if s == "configmap" {
            return Ok(StoreSpec::ConfigMap(None));
        }
        if let Some(namespace) = s.strip_prefix("configmap:") {
            if namespace.is_empty() {
                bail!("configmap store: empty namespace (use configmap or configmap:NAMESPACE)");
            }
            return Ok(StoreSpec::ConfigMap(Some(namespace.to_string())));
        }
        if let Some(endpoints) = s.strip_prefix("etcd:") {
            let endpoints: Vec<String> = endpoints
                .split(',')
                .filter(|e| !e.is_empty())
                .map(|e| {
                    if e.contains("://") {
                        e.to_string()
                    } else {
                        format!("http://{e}")
                    }
                })
                .collect();
            if endpoints.is_empty() {
                bail!("etcd store needs endpoints: etcd:http://HOST:2379[,...]");
            }
            return Ok(StoreSpec::Etcd(endpoints));
        }
        bail!(
            "unknown store {s:?}: expected file:PATH, configmap[:NAMESPACE], etcd:URL[,URL...] or memory"
        )
    }
}

/// Options of stores beyond their address.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreOptions {
    /// Key prefix of the etcd store; each pipeline is `<prefix><name>`.
    #[arg(long, env = "CUTOVER_ETCD_PREFIX", default_value = DEFAULT_ETCD_PREFIX)]
    pub etcd_prefix: String,
    /// etcd user, if authentication is on (password in CUTOVER_ETCD_PASSWORD).
    #[arg(long, env = "CUTOVER_ETCD_USER")]
    pub etcd_user: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            etcd_prefix: DEFAULT_ETCD_PREFIX.into(),
            etcd_user: None,
        }
    }
}

impl StoreSpec {
    /// Opens (connects to) the store.
    pub async fn open(&self, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            StoreSpec::File(path) => Arc::new(
                FileStore::open(path)
                    .with_context(|| format!("opening file store {}", path.display()))?,
            ),
            StoreSpec::Memory => Arc::new(MemoryStore::new()),
            StoreSpec::ConfigMap(namespace) => Arc::new(
                ConfigMapStore::connect(namespace.clone())
                    .await
                    .context("connecting to Kubernetes (in-cluster config or kubeconfig)")?,
            ),
            StoreSpec::Etcd(endpoints) => {
                let user = match &options.etcd_user {
                    Some(user) => {
                        let password = std::env::var("CUTOVER_ETCD_PASSWORD")
                            .context("CUTOVER_ETCD_USER is set but CUTOVER_ETCD_PASSWORD is not")?;
                        Some((user.clone(), password))
                    }
                    None => None,
                };
                let etcd = EtcdOptions {
                    prefix: options.etcd_prefix.clone(),
                    user,
                    ..EtcdOptions::new(endpoints.clone())
                };
                Arc::new(
                    EtcdStore::connect(etcd).await.with_context(|| {
                        format!("connecting to etcd at {}", endpoints.join(","))
                    })?,
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_store_kind() {
        assert!(matches!(
            "memory".parse::<StoreSpec>(),
            Ok(StoreSpec::Memory)
        ));
        assert!(
            matches!("file:/x".parse::<StoreSpec>(), Ok(StoreSpec::File(p)) if p == std::path::Path::new("/x"))
        );
        match "etcd:http://a:2379,b:2379".parse::<StoreSpec>() {
            Ok(StoreSpec::Etcd(e)) => assert_eq!(e, vec!["http://a:2379", "http://b:2379"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            "configmap".parse::<StoreSpec>(),
            Ok(StoreSpec::ConfigMap(None))
        ));
        assert!(
            matches!("configmap:prod".parse::<StoreSpec>(), Ok(StoreSpec::ConfigMap(Some(n))) if n == "prod")
        );
        for bad in ["file:", "etcd:", "configmap:", "zookeeper:x", ""] {
            assert!(bad.parse::<StoreSpec>().is_err(), "{bad}");
        }
    }
}
