//! `CreatePipeline` sets owner and horizon window once. `DeletePipeline`:
//! refused while a gate is connected (nothing changes),
//! then removes the stored document; watchers of the pipeline are told it
//! is gone, and a gate connecting later starts a fresh pipeline. Each call
//! is counted by method and outcome.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour};
use cutover_coordinator::store::{MemoryStore, Store};
use cutover_core::{Epoch, PipelineName};
use cutover_proto::v1;
use cutover_tests::*;
use futures::StreamExt;

/// The coordinator's metrics in the text exposition format.
fn exposition(coordinator: &TestCoordinator) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    coordinator.metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_is_deleted_only_without_connected_gates() -> anyhow::Result<()> {
    let store = Arc::new(MemoryStore::new());
    let coordinator = TestCoordinator::start(store.clone(), test_config()).await?;
    let limit = Duration::from_secs(10);
    let pipeline = PipelineName::new("orders")?;
    let client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let gate = client.gate(identity("orders", Colour::Blue, 0, 1))?;
    tokio::time::timeout(limit, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    let mut control = coordinator.control().await?;
    let refused = control
        .delete(&pipeline)
        .await
        .expect_err("a connected gate blocks the deletion");
    let refused = refused.status().expect("a refusal");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("1 connected gates"),
        "{}",
        refused.message()
    );
    assert!(
        store.load(&pipeline).await?.is_some(),
        "nothing was deleted"
    );

    let mut watch = Box::pin(control.watch(&pipeline).await?);
    drop(gate);
    client.shutdown().await;
    wait_for_status(&mut control, "orders", limit, |s| s.blue.connected == 0).await?;
    assert!(
        exposition(&coordinator).contains("pipeline=\"orders\""),
        "the pipeline has metric series while it exists"
    );
    let deleted = control.delete(&pipeline).await?;
    assert_eq!(deleted, Epoch(1));
    assert!(store.load(&pipeline).await?.is_none());
    let metrics = exposition(&coordinator);
    assert!(
        !metrics.contains("pipeline=\"orders\""),
        "a deleted pipeline's series are removed:\n{metrics}"
    );
    // Both deletion calls were audited and counted by outcome.
    for line in [
        "cutover_control_requests_total{method=\"DeletePipeline\",code=\"FAILED_PRECONDITION\"} 1",
        "cutover_control_requests_total{method=\"DeletePipeline\",code=\"OK\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    let gone = control.get(&pipeline).await.expect_err("deleted");
    assert_eq!(gone.code(), Some(tonic::Code::NotFound));
    let ended = tokio::time::timeout(limit, async {
        loop {
            match watch.next().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await?;
    assert_eq!(
        ended.map(|e| e.map(|_| ()).map_err(|e| e.code())),
        Some(Err(Some(tonic::Code::NotFound))),
        "the watch ends with NOT_FOUND"
    );
    let again = control.delete(&pipeline).await.expect_err("gone");
    assert_eq!(again.code(), Some(tonic::Code::NotFound));

    // A gate of the other colour starts a fresh pipeline owned by it.
    let client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let _gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(limit, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    let fresh = control.get(&pipeline).await?;
    assert_eq!(fresh.active, Colour::Green);
    assert_eq!(epoch_of(&fresh), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_pipeline_sets_owner_and_window_once() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut control = coordinator.control().await?;
    let name = PipelineName::new("orders")?;
    let created = control.create(&name, Colour::Green, Some(2_500)).await?;
    assert_eq!(created.active, Colour::Green);
    let cell = coordinator.coordinator.cell(&name).await?;
    assert_eq!(cell.doc().policy.window, 2_500);

    // Again, with other values: the pipeline is returned unchanged.
    let again = control.create(&name, Colour::Blue, Some(9_000)).await?;
    assert_eq!(again.active, Colour::Green);
    assert_eq!(cell.doc().policy.window, 2_500);

    // Bad input is refused with the reason and creates nothing.
    let bad = control
        .raw()
        .create_pipeline(v1::CreatePipelineRequest {
            pipeline: "payments".into(),
            owner: 0,
            horizon_window: 0,
        })
        .await
        .expect_err("no owner colour");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("owner"), "{}", bad.message());
    let unknown = control
        .get(&PipelineName::new("payments")?)
        .await
        .expect_err("not created");
    assert_eq!(unknown.code(), Some(tonic::Code::NotFound));
    Ok(())
}
