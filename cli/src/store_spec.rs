//! Parsing `--store` values into a store.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cutover_coordinator::store::{
    ConfigMapStore, ConnectingStore, EtcdOptions, EtcdStore, EtcdTls, FileStore, MemoryStore,
    OwnerPod, Store,
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
    /// PEM file of the CA that signed etcd's certificate (https:// endpoints;
    /// the system's roots when absent).
    #[arg(long, env = "CUTOVER_ETCD_CA_FILE")]
    pub etcd_ca_file: Option<PathBuf>,
    /// PEM client certificate for etcd's --client-cert-auth (with
    /// --etcd-key-file).
    #[arg(long, env = "CUTOVER_ETCD_CERT_FILE", requires = "etcd_key_file")]
    pub etcd_cert_file: Option<PathBuf>,
    /// PEM private key of --etcd-cert-file.
    #[arg(long, env = "CUTOVER_ETCD_KEY_FILE", requires = "etcd_cert_file")]
    pub etcd_key_file: Option<PathBuf>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            etcd_prefix: DEFAULT_ETCD_PREFIX.into(),
            etcd_user: None,
            etcd_ca_file: None,
            etcd_cert_file: None,
            etcd_key_file: None,
        }
    }
}

impl StoreOptions {
    /// Reads the etcd TLS files named by the options.
    fn etcd_tls(&self) -> anyhow::Result<EtcdTls> {
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).with_context(|| format!("reading etcd {what} {}", path.display()))
        };
        let ca_pem = self
            .etcd_ca_file
            .as_ref()
            .map(|p| read(p, "CA file"))
            .transpose()?;
        let identity_pem = match (&self.etcd_cert_file, &self.etcd_key_file) {
            (Some(cert), Some(key)) => {
                Some((read(cert, "certificate file")?, read(key, "key file")?))
            }
            (None, None) => None,
            _ => bail!("--etcd-cert-file and --etcd-key-file go together"),
        };
        Ok(EtcdTls {
            ca_pem,
            identity_pem,
        })
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
            StoreSpec::ConfigMap(namespace) => {
                let store = ConfigMapStore::connect(namespace.clone())
                    .await
                    .context("connecting to Kubernetes (in-cluster config or kubeconfig)")?;
                // In a Pod (the downward API sets both), the coordinator's
                // fleet records are owned by it and go away with it.
                let store = match (std::env::var("POD_NAME"), std::env::var("POD_UID")) {
                    (Ok(name), Ok(uid)) if !name.is_empty() && !uid.is_empty() => {
                        store.with_owner_pod(OwnerPod { name, uid })
                    }
                    _ => store,
                };
                Arc::new(store)
            }
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
                    tls: options.etcd_tls()?,
                    ..EtcdOptions::new(endpoints.clone())
                };
                // Misconfiguration fails now; an etcd that does not answer
                // yet is retried in the background (the coordinator reports
                // NOT_SERVING meanwhile).
                etcd.check()?;
                let description = format!("etcd:{}", endpoints.join(","));
                ConnectingStore::spawn(
                    description,
                    move || {
                        let etcd = etcd.clone();
                        async move {
                            EtcdStore::connect(etcd)
                                .await
                                .map(|store| Arc::new(store) as Arc<dyn Store>)
                        }
                    },
                    Duration::from_millis(200),
                    Duration::from_secs(10),
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
