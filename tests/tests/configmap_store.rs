//! The ConfigMap store against the fake API server: what an operator sees
//! with kubectl, an edited view refused, a watch that recovers from 410
//! Gone by re-listing, and a coordinator serving from ConfigMaps.

use std::sync::Arc;
use std::time::Duration;

use cutover_coordinator::store::{CasOutcome, ConfigMapStore, Store, StoreError};
use cutover_core::{Colour, HorizonPolicy, PipelineDoc, PipelineName};
use cutover_tests::kube_api::FakeApiServer;
use futures::StreamExt;

const CONFIGMAPS: &str = "api/v1/namespaces/default/configmaps";
const LIMIT: Duration = Duration::from_secs(10);

fn doc(name: &PipelineName) -> PipelineDoc {
    PipelineDoc::new(
        name.clone(),
        Colour::Green,
        HorizonPolicy::default(),
        cutover_core::Incarnation(1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_reads_at_a_glance_and_an_edited_view_is_refused() -> anyhow::Result<()> {
    let api = FakeApiServer::start().await?;
    let store = ConfigMapStore::new(api.client()?, None);
    let name = PipelineName::new("orders")?;
    let CasOutcome::Written(_) = store.compare_and_swap(&name, None, &doc(&name)).await? else {
        anyhow::bail!("create conflicted");
    };
    let object = api.get_raw(CONFIGMAPS, "cutover-orders").expect("created");
    assert_eq!(
        object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "cutover"
    );
    assert_eq!(
        object["metadata"]["labels"]["cutover.dev/pipeline"],
        "orders"
    );
    let data = &object["data"];
    assert_eq!(data["active"], "GREEN");
    assert_eq!(data["segments"], "-inf GREEN");
    assert_eq!(data["horizon"], "-inf");
    assert_eq!(data["phase"], "none");
    assert_eq!(data["epoch"], "1");
    assert!(
        data["document"]
            .as_str()
            .is_some_and(|d| d.contains("\"schema\":1"))
    );

    // Someone edits a view with kubectl: reported, never overwritten.
    let mut edited = object.clone();
    edited["data"]["active"] = "BLUE".into();
    api.put_raw(CONFIGMAPS, "cutover-orders", edited);
    let error = store.load(&name).await.expect_err("inconsistent");
    assert!(matches!(error, StoreError::Corrupt { .. }));
    assert!(
        error
            .to_string()
            .contains("`active` disagrees with `document`"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("configmap default/cutover-orders"),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_recovers_from_410_gone_by_re_listing() -> anyhow::Result<()> {
    let api = FakeApiServer::start().await?;
    let (watcher, writer) = (
        ConfigMapStore::new(api.client()?, None),
        ConfigMapStore::new(api.client()?, None),
    );
    let name = PipelineName::new("orders")?;
    let mut current = doc(&name);
    let CasOutcome::Written(mut version) = writer.compare_and_swap(&name, None, &current).await?
    else {
        anyhow::bail!("create conflicted");
    };
    let mut watch = watcher.watch(&name);
    let first = tokio::time::timeout(LIMIT, watch.next())
        .await?
        .transpose()?
        .flatten();
    assert_eq!(first.map(|s| s.doc.epoch()), Some(current.epoch()));
    // History is compacted away, then the watch connection drops: the
    // watcher resumes from a version the server no longer has (410), and
    // must re-list to see the latest document.
    for _ in 0..3 {
        current.plan.epoch = current.plan.epoch.next();
        let CasOutcome::Written(v) = writer
            .compare_and_swap(&name, Some(&version), &current)
            .await?
        else {
            anyhow::bail!("write conflicted");
        };
        version = v;
    }
    api.compact();
    current.plan.epoch = current.plan.epoch.next();
    let CasOutcome::Written(_) = writer
        .compare_and_swap(&name, Some(&version), &current)
        .await?
    else {
        anyhow::bail!("write conflicted");
    };
    loop {
        let seen = tokio::time::timeout(LIMIT, watch.next())
            .await?
            .transpose()?
            .flatten();
        if seen.as_ref().map(|s| s.doc.epoch()) == Some(current.epoch()) {
            break;
        }
    }
    assert!(
        api.gone_responses() > 0,
        "the watch never resumed from a compacted version"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_serves_a_cutover_from_configmaps() -> anyhow::Result<()> {
    use cutover_client::{Client, ClientConfig, Key};
    use cutover_core::{Epoch, Phase, ScheduleRequest};
    use cutover_tests::*;

    let api = FakeApiServer::start().await?;
    let store = Arc::new(ConfigMapStore::new(api.client()?, None));
    let coordinator = TestCoordinator::start(store, test_config()).await?;
    let client = Client::connect(
        ClientConfig::new(coordinator.endpoint()).progress_interval(Duration::from_millis(20)),
    )?;
    let mut gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(
        LIMIT,
        client.wait_for_epoch(&PipelineName::new("orders")?, Epoch(1)),
    )
    .await?;
    gate.observe_watermark(Key(10_000));
    let mut control = coordinator.control().await?;
    wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > i64::MIN).await?;
    let (_, at) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Blue),
    )
    .await?;
    gate.observe_watermark(Key(at + 10));
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.phase == Some(Phase::Drained)
    })
    .await?;
    let object = api.get_raw(CONFIGMAPS, "cutover-orders").expect("stored");
    assert_eq!(object["data"]["phase"], "DRAINED");
    assert_eq!(object["data"]["active"], "BLUE");
    assert_eq!(object["data"]["segments"], format!("-inf GREEN\n{at} BLUE"));
    println!("{}", serde_json::to_string_pretty(&object["data"])?);
    Ok(())
}
