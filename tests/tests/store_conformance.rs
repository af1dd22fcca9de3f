//! The store conformance suite on every backend: memory, file, and a real
//! etcd started by the test.

use std::sync::Arc;
use std::time::Duration;

use cutover_coordinator::store::{
    CasOutcome, ConfigMapStore, EtcdOptions, EtcdStore, EtcdTls, FileStore, MemoryStore, Store,
    views,
};
use cutover_core::{Colour, HorizonPolicy, PipelineDoc, PipelineName};
use cutover_tests::conformance::{Backend, check_all};
use cutover_tests::etcd::EtcdServer;
use cutover_tests::kube_api::FakeApiServer;
use cutover_tests::pki::TestPki;
use futures::StreamExt;
use futures::future::BoxFuture;

struct Memory(MemoryStore);

impl Backend for Memory {
    fn handle(&self) -> BoxFuture<'_, anyhow::Result<Arc<dyn Store>>> {
        Box::pin(async { Ok(Arc::new(self.0.clone()) as Arc<dyn Store>) })
    }
    fn plant(&self, _: &PipelineName, _: &[u8]) -> Option<BoxFuture<'_, anyhow::Result<()>>> {
        None
    }
    fn raw(&self, _: &PipelineName) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>> {
        Box::pin(async { Ok(None) })
    }
}

struct Files(tempfile::TempDir);

impl Backend for Files {
    fn handle(&self) -> BoxFuture<'_, anyhow::Result<Arc<dyn Store>>> {
        Box::pin(async {
            let store =
                FileStore::open(self.0.path())?.with_poll_interval(Duration::from_millis(10));
            Ok(Arc::new(store) as Arc<dyn Store>)
        })
    }
    fn plant(
        &self,
        name: &PipelineName,
        bytes: &[u8],
    ) -> Option<BoxFuture<'_, anyhow::Result<()>>> {
        let path = self.0.path().join(format!("{name}.json"));
        let bytes = bytes.to_vec();
        Some(Box::pin(async move { Ok(std::fs::write(path, bytes)?) }))
    }
    fn raw(&self, name: &PipelineName) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>> {
        let path = self.0.path().join(format!("{name}.json"));
        Box::pin(async move { Ok(std::fs::read(path).ok()) })
    }
}

struct Etcd {
    server: EtcdServer,
    prefix: String,
    tls: EtcdTls,
}

impl Etcd {
    fn options(&self) -> EtcdOptions {
        EtcdOptions {
            prefix: self.prefix.clone(),
            tls: self.tls.clone(),
            ..EtcdOptions::new(vec![self.server.endpoint.clone()])
        }
    }
    async fn client(&self) -> anyhow::Result<etcd_client::Client> {
        let options = self.server.connect_options();
        Ok(etcd_client::Client::connect([&self.server.endpoint], Some(options)).await?)
    }
}

impl Backend for Etcd {
    fn handle(&self) -> BoxFuture<'_, anyhow::Result<Arc<dyn Store>>> {
        Box::pin(async {
            Ok(Arc::new(EtcdStore::connect(self.options()).await?) as Arc<dyn Store>)
        })
    }
    fn plant(
        &self,
        name: &PipelineName,
        bytes: &[u8],
    ) -> Option<BoxFuture<'_, anyhow::Result<()>>> {
        let key = format!("{}{name}", self.prefix);
        let bytes = bytes.to_vec();
        Some(Box::pin(async move {
            self.client().await?.put(key, bytes, None).await?;
            Ok(())
        }))
    }
    fn raw(&self, name: &PipelineName) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>> {
        let key = format!("{}{name}", self.prefix);
        Box::pin(async move {
            let response = self.client().await?.get(key, None).await?;
            Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
        })
    }
}

/// ConfigMaps in namespace `default` of the fake API server.
struct ConfigMaps(FakeApiServer);

const CONFIGMAPS: &str = "api/v1/namespaces/default/configmaps";

impl Backend for ConfigMaps {
    fn handle(&self) -> BoxFuture<'_, anyhow::Result<Arc<dyn Store>>> {
        Box::pin(async {
            Ok(Arc::new(ConfigMapStore::new(self.0.client()?, None)) as Arc<dyn Store>)
        })
    }
    fn plant(
        &self,
        name: &PipelineName,
        bytes: &[u8],
    ) -> Option<BoxFuture<'_, anyhow::Result<()>>> {
        // A readable document gets the views a coordinator writes with it.
        let mut data = serde_json::from_slice::<PipelineDoc>(bytes)
            .map(|doc| views(&doc))
            .unwrap_or_default();
        data.insert(
            "document".into(),
            String::from_utf8_lossy(bytes).into_owned(),
        );
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "namespace": "default", "labels": { "app.kubernetes.io/managed-by": "cutover", "cutover.dev/pipeline": name.to_string() } },
            "data": data,
        });
        self.0
            .put_raw(CONFIGMAPS, &ConfigMapStore::object_name(name), object);
        Some(Box::pin(async { Ok(()) }))
    }
    /// The `document` key, where [`Backend::plant`] puts its bytes.
    fn raw(&self, name: &PipelineName) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>> {
        let object = self
            .0
            .get_raw(CONFIGMAPS, &ConfigMapStore::object_name(name));
        let document = object.and_then(|o| {
            o["data"]["document"]
                .as_str()
                .map(|d| d.as_bytes().to_vec())
        });
        Box::pin(async move { Ok(document) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_store_conforms() -> anyhow::Result<()> {
    check_all(&ConfigMaps(FakeApiServer::start().await?), "configmap").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() -> anyhow::Result<()> {
    check_all(&Memory(MemoryStore::new()), "memory").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_conforms() -> anyhow::Result<()> {
    check_all(&Files(tempfile::tempdir()?), "file").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_conforms() -> anyhow::Result<()> {
    let backend = Etcd {
        server: EtcdServer::start().await?,
        prefix: "/conformance/".into(),
        tls: EtcdTls::default(),
    };
    check_all(&backend, "etcd").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_conforms_over_tls_with_a_client_certificate() -> anyhow::Result<()> {
    let pki = TestPki::generate()?;
    let client = pki.client();
    let backend = Etcd {
        server: EtcdServer::start_tls(&pki).await?,
        prefix: "/conformance/".into(),
        tls: EtcdTls {
            ca_pem: Some(std::fs::read(pki.ca())?),
            identity_pem: Some((std::fs::read(&client.cert)?, std::fs::read(&client.key)?)),
        },
    };
    check_all(&backend, "etcd-tls").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_watch_resuming_from_a_compacted_revision_re_reads() -> anyhow::Result<()> {
    let server = EtcdServer::start().await?;
    let options = EtcdOptions {
        prefix: "/compaction/".into(),
        ..EtcdOptions::new(vec![server.endpoint.clone()])
    };
    let store = EtcdStore::connect(options).await?;
    let name = PipelineName::new("orders")?;
    let mut doc = PipelineDoc::new(
        name.clone(),
        Colour::Green,
        HorizonPolicy::default(),
        cutover_core::Incarnation(1),
    );
    let first = match store.compare_and_swap(&name, None, &doc).await? {
        CasOutcome::Written(v) => v,
        other => anyhow::bail!("{other:?}"),
    };
    let mut version = first.clone();
    for _ in 0..50 {
        doc.plan.epoch = doc.plan.epoch.next();
        version = match store.compare_and_swap(&name, Some(&version), &doc).await? {
            CasOutcome::Written(v) => v,
            other => anyhow::bail!("{other:?}"),
        };
    }
    let compacted = server.compact().await?;
    let resume: i64 = first.as_str().parse()?;
    assert!(resume < compacted, "the resume revision is compacted away");
    // Resuming after the first write: etcd refuses (compacted), the watch
    // re-reads and delivers the latest document.
    let mut watch = store.watch_from(&name, Some(resume + 1));
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .transpose()?
        .flatten();
    assert_eq!(
        seen.map(|s| (s.version, s.doc.epoch())),
        Some((version, doc.epoch()))
    );
    // And it keeps watching.
    doc.plan.epoch = doc.plan.epoch.next();
    let store2 = EtcdStore::connect(EtcdOptions {
        prefix: "/compaction/".into(),
        ..EtcdOptions::new(vec![server.endpoint.clone()])
    })
    .await?;
    let latest = store2
        .load(&name)
        .await?
        .map(|s| s.version)
        .expect("stored");
    store2.compare_and_swap(&name, Some(&latest), &doc).await?;
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .transpose()?
        .flatten();
    assert_eq!(seen.map(|s| s.doc.epoch()), Some(doc.epoch()));
    assert_eq!(store.list().await?, vec![name]);
    Ok(())
}
