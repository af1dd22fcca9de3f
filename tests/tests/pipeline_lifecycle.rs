//! `CreatePipeline` sets owner and horizon window once. `DeletePipeline`:
//! refused while a gate is connected (nothing changes),
//! then removes the stored document; watchers of the pipeline are told it
//! is gone, and a gate connecting later starts a fresh pipeline.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour};
use cutover_coordinator::store::{MemoryStore, Store};
use cutover_core::{Epoch, PipelineName};
use cutover_proto::v1;
use cutover_tests::*;

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
    let delete = v1::DeletePipelineRequest {
        pipeline: "orders".into(),
    };

    let refused = control
        .delete_pipeline(delete.clone())
        .await
        .expect_err("a connected gate blocks the deletion");
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

    let mut watch = control
        .watch_pipeline(v1::WatchPipelineRequest {
            pipeline: "orders".into(),
        })
        .await?
        .into_inner();
    drop(gate);
    client.shutdown().await;
    wait_for_status(&mut control, "orders", limit, |s| {
        s.blue.is_some_and(|g| g.connected == 0)
    })
    .await?;
    let deleted = control.delete_pipeline(delete.clone()).await?.into_inner();
    assert_eq!(deleted.epoch, 1);
    assert!(store.load(&pipeline).await?.is_none());
    let gone = control
        .get_pipeline(v1::GetPipelineRequest {
            pipeline: "orders".into(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let ended = tokio::time::timeout(limit, async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await?;
    assert_eq!(
        ended.map(|_| ()).map_err(|s| s.code()),
        Err(tonic::Code::NotFound),
        "the watch ends with NOT_FOUND"
    );
    let again = control.delete_pipeline(delete).await.expect_err("gone");
    assert_eq!(again.code(), tonic::Code::NotFound);

    // A gate of the other colour starts a fresh pipeline owned by it.
    let client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let _gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(limit, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    let fresh = control
        .get_pipeline(v1::GetPipelineRequest {
            pipeline: "orders".into(),
        })
        .await?
        .into_inner();
    assert_eq!(fresh.active, v1::Colour::Green as i32);
    assert_eq!(epoch_of(&fresh), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_pipeline_sets_owner_and_window_once() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut control = coordinator.control().await?;
    let create = |owner: v1::Colour, window: u64| v1::CreatePipelineRequest {
        pipeline: "orders".into(),
        owner: owner as i32,
        horizon_window: window,
    };
    let created = control
        .create_pipeline(create(v1::Colour::Green, 2_500))
        .await?
        .into_inner();
    assert_eq!(created.active, v1::Colour::Green as i32);
    let name = PipelineName::new("orders")?;
    let cell = coordinator.coordinator.cell(&name).await?;
    assert_eq!(cell.doc().policy.window, 2_500);

    // Again, with other values: the pipeline is returned unchanged.
    let again = control
        .create_pipeline(create(v1::Colour::Blue, 9_000))
        .await?
        .into_inner();
    assert_eq!(again.active, v1::Colour::Green as i32);
    assert_eq!(cell.doc().policy.window, 2_500);

    // Bad input is refused with the reason and creates nothing.
    let bad = control
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
        .get_pipeline(v1::GetPipelineRequest {
            pipeline: "payments".into(),
        })
        .await
        .expect_err("not created");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    Ok(())
}
