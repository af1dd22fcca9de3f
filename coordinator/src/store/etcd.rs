//! The etcd store: one key per pipeline under a prefix, for coordinators in
//! several clusters sharing one plan.
//!
//! The value is the document as JSON (readable with `etcdctl get`); the
//! version is the key's mod revision. A write is a transaction comparing the
//! mod revision (creation: the create revision is 0); when the comparison
//! fails the same transaction reads the current value, so a lost
//! compare-and-swap costs one round trip. Watches resume from the revision
//! after the last one seen; if etcd compacted that revision away, the watch
//! re-reads the key and starts again from there.

use std::time::Duration;

use cutover_core::{PipelineDoc, PipelineName};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    KeyValue, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use cutover_core::fleet::CoordinatorId;

use super::{CasOutcome, Collection, DeleteOutcome, Records, Store, StoreError, Stored, Version};

/// How to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Client URLs (`http://host:2379`).
    pub endpoints: Vec<String>,
    /// Key prefix; each pipeline is `<prefix><name>`.
    pub prefix: String,
    /// Timeout of one request.
    pub timeout: Duration,
    /// User name and password, if etcd has authentication on.
    pub user: Option<(String, String)>,
    /// TLS settings for `https://` endpoints.
    pub tls: EtcdTls,
}

/// TLS towards etcd, used when the endpoints are `https://`.
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    /// PEM certificates of the CA that signed etcd's server certificate;
    /// the system's roots when absent.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and private key, for etcd's
    /// `--client-cert-auth`.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl EtcdOptions {
    /// Options for `endpoints` with the default prefix `/cutover/pipelines/`.
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdOptions {
            endpoints,
            prefix: "/cutover/pipelines/".into(),
            timeout: Duration::from_secs(5),
            user: None,
            tls: EtcdTls::default(),
        }
    }
}

/// Pipelines in etcd.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    options: EtcdOptions,
}

pub(super) fn unavailable(e: etcd_client::Error) -> StoreError {
    StoreError::Unavailable {
        reason: format!("etcd: {e}"),
    }
}

/// TLS options for the endpoints: none for `http://`, the configured CA
/// (or the system's roots) and client identity for `https://`. Mixed
/// schemes, or TLS settings with `http://` endpoints, are refused.
fn tls_options(options: &EtcdOptions) -> Result<Option<TlsOptions>, StoreError> {
    let invalid = |reason: &str| StoreError::Misconfigured {
        reason: format!("etcd: {reason}"),
    };
    let https = options
        .endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    let configured = options.tls.ca_pem.is_some() || options.tls.identity_pem.is_some();
    if https == 0 {
        return if configured {
            Err(invalid("TLS settings need https:// endpoints"))
        } else {
            Ok(None)
        };
    }
    if https != options.endpoints.len() {
        return Err(invalid("endpoints mix http:// and https://"));
    }
    let mut tls = TlsOptions::new();
    tls = match &options.tls.ca_pem {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
        None => tls.with_native_roots(),
    };
    if let Some((cert, key)) = &options.tls.identity_pem {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Ok(Some(tls))
}

impl EtcdOptions {
    /// Checks the settings without connecting (mixed schemes, TLS settings
    /// without https:// endpoints).
    pub fn check(&self) -> Result<(), StoreError> {
        tls_options(self).map(|_| ())
    }
}

impl EtcdStore {
    /// Connects to etcd.
    pub async fn connect(options: EtcdOptions) -> Result<Self, StoreError> {
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.timeout)
            .with_timeout(options.timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if let Some((user, password)) = &options.user {
            connect = connect.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = tls_options(&options)? {
            connect = connect.with_tls(tls);
        }
        let client = Client::connect(&options.endpoints, Some(connect))
            .await
            .map_err(unavailable)?;
        Ok(EtcdStore { client, options })
    }

    /// The key of `name`.
    pub fn key_of(&self, name: &PipelineName) -> String {
        format!("{}{name}", self.options.prefix)
    }

    /// The documents' key prefix.
    pub fn prefix(&self) -> &str {
        &self.options.prefix
    }

    /// A client on the same connection (for tests and tools).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn decode(&self, name: &PipelineName, kv: &KeyValue) -> Result<Stored, StoreError> {
        decode_etcd_value(
            name,
            &format!("etcd key {}", self.key_of(name)),
            kv.value(),
            kv.mod_revision(),
        )
    }

    fn revision(version: &Version) -> Result<i64, StoreError> {
        version
            .as_str()
            .parse()
            .map_err(|_| StoreError::Unavailable {
                reason: format!("{version} is not an etcd revision"),
            })
    }

    /// The current value and the store revision it was read at.
    async fn read(&self, name: &PipelineName) -> Result<(Option<Stored>, i64), StoreError> {
        let mut client = self.client.clone();
        let response = client
            .get(self.key_of(name), None)
            .await
            .map_err(unavailable)?;
        let revision = response.header().map_or(0, |h| h.revision());
        let stored = match response.kvs().first() {
            Some(kv) => Some(self.decode(name, kv)?),
            None => None,
        };
        Ok((stored, revision))
    }

    /// Runs a transaction guarded by `compare`; on failure returns what is
    /// stored.
    async fn guarded(
        &self,
        name: &PipelineName,
        compare: Compare,
        then: TxnOp,
    ) -> Result<Result<i64, Option<Stored>>, StoreError> {
        let key = self.key_of(name);
        let txn = Txn::new()
            .when([compare])
            .and_then([then])
            .or_else([TxnOp::get(key, None)]);
        let mut client = self.client.clone();
        let response = client.txn(txn).await.map_err(unavailable)?;
        if response.succeeded() {
            return Ok(Ok(response.header().map_or(0, |h| h.revision())));
        }
        let current = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get),
            _ => None,
        });
        let stored = match current.as_ref().and_then(|g| g.kvs().first()) {
            Some(kv) => Some(self.decode(name, kv)?),
            None => None,
        };
        Ok(Err(stored))
    }
}

impl Store for EtcdStore {
    fn describe(&self) -> String {
        format!(
            "etcd:{} (prefix {})",
            self.options.endpoints.join(","),
            self.options.prefix
        )
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<PipelineName>, StoreError>> {
        Box::pin(async move {
            let mut client = self.client.clone();
            let response = client
                .get(
                    self.options.prefix.clone(),
                    Some(GetOptions::new().with_prefix().with_keys_only()),
                )
                .await
                .map_err(unavailable)?;
            let mut names: Vec<PipelineName> = response
                .kvs()
                .iter()
                .filter_map(|kv| {
                    let key = std::str::from_utf8(kv.key()).ok()?;
                    PipelineName::new(key.strip_prefix(&self.options.prefix)?).ok()
                })
                .collect();
            names.sort();
            Ok(names)
        })
    }

    fn load<'a>(
        &'a self,
        name: &'a PipelineName,
    ) -> BoxFuture<'a, Result<Option<Stored>, StoreError>> {
        Box::pin(async move { Ok(self.read(name).await?.0) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: Option<&'a Version>,
        doc: &'a PipelineDoc,
    ) -> BoxFuture<'a, Result<CasOutcome, StoreError>> {
        Box::pin(async move {
            let key = self.key_of(name);
            let compare = match expected {
                None => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
                Some(version) => {
                    Compare::mod_revision(key.clone(), CompareOp::Equal, Self::revision(version)?)
                }
            };
            let value = serde_json::to_vec(doc).map_err(|e| StoreError::Unavailable {
                reason: format!("cannot encode document: {e}"),
            })?;
            Ok(
                match self
                    .guarded(name, compare, TxnOp::put(key, value, None))
                    .await?
                {
                    Ok(revision) => CasOutcome::Written(Version::new(revision.to_string())),
                    Err(current) => CasOutcome::Conflict(current.map(Box::new)),
                },
            )
        })
    }

    fn delete<'a>(
        &'a self,
        name: &'a PipelineName,
        expected: &'a Version,
    ) -> BoxFuture<'a, Result<DeleteOutcome, StoreError>> {
        Box::pin(async move {
            let key = self.key_of(name);
            let compare =
                Compare::mod_revision(key.clone(), CompareOp::Equal, Self::revision(expected)?);
            Ok(
                match self
                    .guarded(name, compare, TxnOp::delete(key, None))
                    .await?
                {
                    Ok(_) => DeleteOutcome::Deleted,
                    Err(current) => DeleteOutcome::Conflict(current.map(Box::new)),
                },
            )
        })
    }

    fn watch(&self, name: &PipelineName) -> BoxStream<'static, Result<Option<Stored>, StoreError>> {
        self.watch_from(name, None)
    }

    fn put_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.put_record_value(collection, coordinator, value))
    }

    fn delete_record<'a>(
        &'a self,
        collection: &'a Collection,
        coordinator: &'a CoordinatorId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.delete_record_value(collection, coordinator))
    }

    fn watch_records(
        &self,
        collection: &Collection,
    ) -> BoxStream<'static, Result<Records, StoreError>> {
        self.watch_records_prefix(collection)
    }
}

impl EtcdStore {
    /// Like [`Store::watch`], but resuming after `revision` (the store
    /// revision of the last value the caller saw) without re-reading first.
    /// If etcd compacted that revision away, the watch re-reads the key and
    /// continues from there.
    pub fn watch_from(
        &self,
        name: &PipelineName,
        revision: Option<i64>,
    ) -> BoxStream<'static, Result<Option<Stored>, StoreError>> {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(watch_key(self.clone(), name.clone(), revision, tx));
        ReceiverStream::new(rx).boxed()
    }
}

type WatchSender = mpsc::Sender<Result<Option<Stored>, StoreError>>;

/// Feeds `tx` until the receiver is dropped: the current value, then every
/// change; re-reads after a compaction or a broken watch.
async fn watch_key(store: EtcdStore, name: PipelineName, resume: Option<i64>, tx: WatchSender) {
    let mut retry = Duration::from_millis(100);
    let mut resume = resume;
    loop {
        let read = match resume.take() {
            Some(revision) => Ok((None, revision)),
            None => store
                .read(&name)
                .await
                .map(|(current, revision)| (Some(current), revision)),
        };
        let (current, revision) = match read {
            Ok(read) => read,
            Err(e) => {
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Some(current) = current
            && tx.send(Ok(current)).await.is_err()
        {
            return;
        }
        let mut client = store.client.clone();
        let options = WatchOptions::new().with_start_revision(revision + 1);
        let mut stream = match client.watch(store.key_of(&name), Some(options)).await {
            Ok(stream) => stream,
            Err(e) => {
                warn!(pipeline = %name, error = %e, "etcd watch failed; re-reading");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        retry = Duration::from_millis(100);
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) | Err(_) => break,
            };
            if response.canceled() {
                debug!(pipeline = %name, compact_revision = response.compact_revision(), reason = response.cancel_reason(), "etcd watch cancelled; re-reading");
                break;
            }
            for event in response.events() {
                let value = match (event.event_type(), event.kv()) {
                    (EventType::Put, Some(kv)) => store.decode(&name, kv).map(Some),
                    (EventType::Delete, _) => Ok(None),
                    (EventType::Put, None) => continue,
                };
                if tx.send(value).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The document of `name` from the value of its key at `location`, read at
/// `mod_revision`: valid and of `name`.
pub fn decode_etcd_value(
    name: &PipelineName,
    location: &str,
    value: &[u8],
    mod_revision: i64,
) -> Result<Stored, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location.to_string(),
        reason,
    };
    let doc: PipelineDoc = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    doc.validate().map_err(|e| corrupt(e.to_string()))?;
    if &doc.name != name {
        return Err(corrupt(format!("holds pipeline {}, not {name}", doc.name)));
    }
    Ok(Stored {
        version: Version::new(mod_revision.to_string()),
        doc,
    })
}
