//! One conformance suite for every [`Store`] backend: load, compare-and-swap
//! (a stale version is refused and the caller learns what is stored), watch
//! sees changes made through another handle (another process), deletes,
//! concurrent writers (no lost update), corrupt or foreign content
//! (reported, never overwritten), fields a newer version wrote (kept on
//! every write), and the fleet records (written, replaced, removed, watched
//! as a collection from another handle, kept apart from the documents and
//! from other collections).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use cutover_coordinator::store::{
    CasOutcome, Collection, DeleteOutcome, Records, Store, StoreError, Stored, Version,
};
use cutover_core::fleet::CoordinatorId;
use cutover_core::{Colour, Epoch, HorizonPolicy, Incarnation, PipelineDoc, PipelineName};
use futures::StreamExt;
use futures::future::BoxFuture;

/// A backend under test.
pub trait Backend: Send + Sync {
    /// A new handle on the same data, as another process would have.
    fn handle(&self) -> BoxFuture<'_, anyhow::Result<Arc<dyn Store>>>;
    /// Writes raw bytes where `name`'s document lives (`None`: the backend
    /// stores typed values and cannot hold corrupt content).
    fn plant(&self, name: &PipelineName, bytes: &[u8])
    -> Option<BoxFuture<'_, anyhow::Result<()>>>;
    /// Reads the raw bytes where `name`'s document lives.
    fn raw(&self, name: &PipelineName) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>>;
}

const LIMIT: Duration = Duration::from_secs(10);

fn doc(name: &PipelineName, epoch: u64) -> PipelineDoc {
    let mut doc = PipelineDoc::new(
        name.clone(),
        Colour::Green,
        HorizonPolicy::default(),
        Incarnation(1),
    );
    doc.plan.epoch = Epoch(epoch);
    doc.segments_epoch = Epoch(0);
    doc
}

fn written(outcome: CasOutcome) -> anyhow::Result<Version> {
    match outcome {
        CasOutcome::Written(version) => Ok(version),
        CasOutcome::Conflict(stored) => bail!("unexpected conflict; stored: {stored:?}"),
    }
}

/// Runs every check; pipeline names start with `prefix`.
pub async fn check_all(backend: &dyn Backend, prefix: &str) -> anyhow::Result<()> {
    load_and_compare_and_swap(backend, &format!("{prefix}-cas"))
        .await
        .context("compare-and-swap")?;
    watch_sees_other_writers(backend, &format!("{prefix}-watch"))
        .await
        .context("watch")?;
    deletes(backend, &format!("{prefix}-delete"))
        .await
        .context("delete")?;
    concurrent_writers(backend, &format!("{prefix}-race"))
        .await
        .context("concurrent writers")?;
    corrupt_content(backend, &format!("{prefix}-corrupt"))
        .await
        .context("corrupt content")?;
    unknown_fields_survive_writes(backend, &format!("{prefix}-newer"))
        .await
        .context("unknown fields")?;
    fleet_records(backend, &format!("{prefix}-fleet"))
        .await
        .context("fleet records")?;
    Ok(())
}

/// Waits on `watch` for a collection satisfying `accept`.
async fn records_until(
    watch: &mut futures::stream::BoxStream<'static, Result<Records, StoreError>>,
    accept: impl Fn(&Records) -> bool,
) -> anyhow::Result<Records> {
    tokio::time::timeout(LIMIT, async {
        loop {
            let records = watch.next().await.context("watch ended")??;
            if accept(&records) {
                return Ok(records);
            }
        }
    })
    .await?
}

/// Records of two coordinators in a pipeline's reports and in the liveness
/// collection: written through one handle, seen through another's watch as
/// a whole collection, replaced, removed; never listed as pipelines, never
/// mixed between collections.
async fn fleet_records(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    let (watcher, writer) = (backend.handle().await?, backend.handle().await?);
    let pipeline = PipelineName::new(name)?;
    let reports = Collection::Reports(pipeline.clone());
    let other = Collection::Reports(PipelineName::new(format!("{name}-other"))?);
    let (a, b) = (
        CoordinatorId::new("coord-a")?,
        CoordinatorId::new("coord_B.2")?,
    );
    let mut watch = watcher.watch_records(&reports);
    records_until(&mut watch, Records::is_empty).await?;

    writer
        .put_record(&reports, &a, b"{\"a\":1}".to_vec())
        .await?;
    writer
        .put_record(&reports, &b, b"{\"b\":1}".to_vec())
        .await?;
    writer.put_record(&other, &a, b"other".to_vec()).await?;
    writer
        .put_record(&Collection::Liveness, &a, b"7".to_vec())
        .await?;
    let seen = records_until(&mut watch, |r| r.len() == 2).await?;
    ensure!(seen.get(&a).map(Vec::as_slice) == Some(&b"{\"a\":1}"[..]));
    ensure!(seen.get(&b).map(Vec::as_slice) == Some(&b"{\"b\":1}"[..]));

    writer
        .put_record(&reports, &a, b"{\"a\":2}".to_vec())
        .await?;
    records_until(&mut watch, |r| {
        r.get(&a).map(Vec::as_slice) == Some(&b"{\"a\":2}"[..])
    })
    .await?;
    writer.delete_record(&reports, &b).await?;
    writer
        .delete_record(&reports, &b)
        .await
        .context("deleting twice")?;
    let seen = records_until(&mut watch, |r| r.len() == 1).await?;
    ensure!(seen.contains_key(&a));

    // A watch opened now starts with the current collection.
    let mut liveness = watcher.watch_records(&Collection::Liveness);
    let current = records_until(&mut liveness, |r| !r.is_empty()).await?;
    ensure!(current.get(&a).map(Vec::as_slice) == Some(&b"7"[..]));
    ensure!(current.len() == 1, "only liveness records: {current:?}");

    let listed = writer.list().await?;
    ensure!(
        !listed.iter().any(|n| n.as_str().starts_with(name)),
        "fleet records are not pipelines: {listed:?}"
    );
    for collection in [&reports, &other, &Collection::Liveness] {
        writer.delete_record(collection, &a).await?;
    }
    records_until(&mut watch, Records::is_empty).await?;
    Ok(())
}

/// A newer coordinator wrote fields this version does not know, at the top
/// of the document, in its plan and (for a backend that wraps the document)
/// around it: a write by this version keeps every one of them.
async fn unknown_fields_survive_writes(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    use serde_json::{Value, json};
    let name = PipelineName::new(name)?;
    let store = backend.handle().await?;
    let first = written(store.compare_and_swap(&name, None, &doc(&name, 1)).await?)?;
    let mut version = first;
    if let Some(raw) = backend.raw(&name).await? {
        let mut stored: Value = serde_json::from_slice(&raw)?;
        let wrapped = stored.get("document").is_some_and(Value::is_object);
        if wrapped {
            stored["envelope_extra"] = json!("kept");
        }
        let document = if wrapped {
            &mut stored["document"]
        } else {
            &mut stored
        };
        document["future_field"] = json!({"nested": [1, 2, 3]});
        document["plan"]["future_plan_field"] = json!(42);
        let plant = backend
            .plant(&name, &serde_json::to_vec(&stored)?)
            .context("a backend with raw content plants it")?;
        plant.await?;
        let loaded = store.load(&name).await?.context("stored")?;
        ensure!(
            loaded.doc.unknown.get("future_field") == Some(&json!({"nested": [1, 2, 3]})),
            "read: {:?}",
            loaded.doc.unknown
        );
        version = loaded.version;
        let mut next = loaded.doc.clone();
        next.plan.epoch = Epoch(2);
        written(store.compare_and_swap(&name, Some(&version), &next).await?)?;
        let raw = backend.raw(&name).await?.context("stored")?;
        let after: Value = serde_json::from_slice(&raw)?;
        let document = if wrapped { &after["document"] } else { &after };
        ensure!(
            document["future_field"]["nested"] == json!([1, 2, 3]),
            "{after}"
        );
        ensure!(
            document["plan"]["future_plan_field"] == json!(42),
            "{after}"
        );
        ensure!(document["plan"]["epoch"] == json!(2), "{after}");
        if wrapped {
            ensure!(after["envelope_extra"] == json!("kept"), "{after}");
        }
    } else {
        // A typed backend: the fields travel in the document itself.
        let mut newer = store.load(&name).await?.context("stored")?.doc;
        newer.unknown.insert("future_field".into(), json!(1));
        newer.plan.epoch = Epoch(2);
        let version2 = written(
            store
                .compare_and_swap(&name, Some(&version), &newer)
                .await?,
        )?;
        let loaded = store.load(&name).await?.context("stored")?;
        ensure!(loaded.version == version2 && loaded.doc == newer);
    }
    Ok(())
}

async fn load_and_compare_and_swap(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    let store = backend.handle().await?;
    let name = PipelineName::new(name)?;
    ensure!(
        store.load(&name).await?.is_none(),
        "a new name loads as nothing"
    );
    let v1 = written(store.compare_and_swap(&name, None, &doc(&name, 1)).await?)?;
    let loaded = store.load(&name).await?.context("stored")?;
    ensure!(
        loaded
            == Stored {
                version: v1.clone(),
                doc: doc(&name, 1)
            },
        "load returns what was written"
    );
    ensure!(
        matches!(
            store.compare_and_swap(&name, None, &doc(&name, 9)).await?,
            CasOutcome::Conflict(Some(_))
        ),
        "creating over an existing document conflicts"
    );
    let v2 = written(
        store
            .compare_and_swap(&name, Some(&v1), &doc(&name, 2))
            .await?,
    )?;
    ensure!(v2 != v1, "a write yields a new version");
    match store
        .compare_and_swap(&name, Some(&v1), &doc(&name, 3))
        .await?
    {
        CasOutcome::Conflict(Some(current)) => {
            ensure!(
                current.version == v2 && current.doc == doc(&name, 2),
                "the loser learns what is stored"
            );
        }
        other => bail!("a stale version must conflict, got {other:?}"),
    }
    ensure!(
        store.load(&name).await?.map(|s| s.doc) == Some(doc(&name, 2)),
        "the stale write changed nothing"
    );
    ensure!(
        store.list().await?.contains(&name),
        "list names the pipeline"
    );
    Ok(())
}

async fn watch_sees_other_writers(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    let (watcher, writer) = (backend.handle().await?, backend.handle().await?);
    let name = PipelineName::new(name)?;
    let mut watch = watcher.watch(&name);
    let first = tokio::time::timeout(LIMIT, watch.next())
        .await?
        .context("watch ended")??;
    ensure!(
        first.is_none(),
        "the watch starts with the current value (nothing)"
    );
    let mut version = None;
    for epoch in 1..=3 {
        version = Some(written(
            writer
                .compare_and_swap(&name, version.as_ref(), &doc(&name, epoch))
                .await?,
        )?);
    }
    // Latest value: intermediate writes may be skipped, the last one is seen.
    loop {
        let seen = tokio::time::timeout(LIMIT, watch.next())
            .await?
            .context("watch ended")??;
        if let Some(stored) = seen {
            ensure!(stored.doc.epoch() <= Epoch(3));
            if stored.doc.epoch() == Epoch(3) {
                ensure!(Some(&stored.version) == version.as_ref());
                break;
            }
        }
    }
    let deleted = writer
        .delete(&name, version.as_ref().context("written")?)
        .await?;
    ensure!(deleted == DeleteOutcome::Deleted);
    let seen = tokio::time::timeout(LIMIT, watch.next())
        .await?
        .context("watch ended")??;
    ensure!(seen.is_none(), "the watch sees the delete");
    Ok(())
}

async fn deletes(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    let store = backend.handle().await?;
    let name = PipelineName::new(name)?;
    let v1 = written(store.compare_and_swap(&name, None, &doc(&name, 1)).await?)?;
    let v2 = written(
        store
            .compare_and_swap(&name, Some(&v1), &doc(&name, 2))
            .await?,
    )?;
    match store.delete(&name, &v1).await? {
        DeleteOutcome::Conflict(Some(current)) => ensure!(current.version == v2),
        other => bail!("a stale delete must conflict, got {other:?}"),
    }
    ensure!(
        store.load(&name).await?.is_some(),
        "the stale delete changed nothing"
    );
    ensure!(store.delete(&name, &v2).await? == DeleteOutcome::Deleted);
    ensure!(store.load(&name).await?.is_none());
    ensure!(!store.list().await?.contains(&name));
    // Gone: deleting again conflicts with nothing; creating works again.
    ensure!(store.delete(&name, &v2).await? == DeleteOutcome::Conflict(None));
    written(store.compare_and_swap(&name, None, &doc(&name, 1)).await?)?;
    Ok(())
}

async fn concurrent_writers(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    const WRITERS: u64 = 4;
    const EACH: u64 = 10;
    let name = PipelineName::new(name)?;
    let setup = backend.handle().await?;
    written(setup.compare_and_swap(&name, None, &doc(&name, 0)).await?)?;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let store = backend.handle().await?;
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                // Read, bump, write; on conflict reload and retry.
                let mut current = store.load(&name).await?.context("stored")?;
                loop {
                    let next = doc(&name, current.doc.epoch().0 + 1);
                    match store
                        .compare_and_swap(&name, Some(&current.version), &next)
                        .await?
                    {
                        CasOutcome::Written(_) => break,
                        CasOutcome::Conflict(Some(stored)) => {
                            conflicts += 1;
                            current = *stored;
                        }
                        CasOutcome::Conflict(None) => bail!("document vanished"),
                    }
                }
            }
            Ok::<u64, anyhow::Error>(conflicts)
        }));
    }
    for task in tasks {
        task.await??;
    }
    let last = setup.load(&name).await?.context("stored")?;
    ensure!(
        last.doc.epoch() == Epoch(WRITERS * EACH),
        "lost updates: epoch {} after {} increments",
        last.doc.epoch(),
        WRITERS * EACH
    );
    Ok(())
}

async fn corrupt_content(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    let name = PipelineName::new(name)?;
    let foreign = serde_json::to_vec(&doc(&PipelineName::new("someone-else")?, 1))?;
    for bytes in [b"{ not json".to_vec(), foreign] {
        let Some(plant) = backend.plant(&name, &bytes) else {
            return Ok(()); // typed backend: nothing can be corrupt
        };
        plant.await?;
        let store = backend.handle().await?;
        let error = store
            .load(&name)
            .await
            .expect_err("corrupt content must not load");
        ensure!(
            matches!(error, StoreError::Corrupt { .. }),
            "reported as corrupt: {error}"
        );
        let current = backend.raw(&name).await?;
        for expected in [None, Some(Version::new("1"))] {
            let _ = store
                .compare_and_swap(&name, expected.as_ref(), &doc(&name, 1))
                .await;
        }
        ensure!(
            backend.raw(&name).await? == current,
            "corrupt content was overwritten"
        );
    }
    Ok(())
}
