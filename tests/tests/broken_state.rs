//! One unreadable pipeline document never takes the others down: the
//! coordinator serves every healthy pipeline, answers DATA_LOSS for the
//! broken one with its path, lists it, reports it on health and in a metric,
//! never writes over it, and serves it again once repaired — at start and
//! while serving.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour, Key};
use cutover_coordinator::server::pipeline_health_service;
use cutover_coordinator::store::{FileStore, Store};
use cutover_core::{Epoch, PipelineName};
use cutover_proto::convert::gate_identity_to;
use cutover_tests::raw_session::{RawSession, hello};
use cutover_tests::*;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const LIMIT: Duration = Duration::from_secs(10);

fn store(dir: &std::path::Path) -> anyhow::Result<Arc<FileStore>> {
    Ok(Arc::new(
        FileStore::open(dir)?.with_poll_interval(Duration::from_millis(20)),
    ))
}

async fn health_of(coordinator: &TestCoordinator, service: String) -> anyhow::Result<i32> {
    let channel = tonic::transport::Channel::from_shared(coordinator.endpoint())?
        .connect()
        .await?;
    Ok(HealthClient::new(channel)
        .check(HealthCheckRequest { service })
        .await?
        .into_inner()
        .status)
}

/// Polls `check` until it holds; the store watch and requests are what move
/// the state, so there is no event to await here from outside.
async fn eventually(mut check: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check().await? {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_documents_at_start_are_reported_and_the_others_served() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = store(dir.path())?;
    // A healthy pipeline, written by a first coordinator.
    {
        let first = TestCoordinator::start(files.clone(), test_config()).await?;
        first
            .control()
            .await?
            .create(&pipeline("healthy"), Colour::Green, None)
            .await?;
        first.stop().await?;
    }
    let corrupt = files.path_of(&PipelineName::new("orders")?);
    std::fs::write(&corrupt, b"{ this is not json")?;
    let stray = files.path_of(&PipelineName::new("stray")?);
    std::fs::create_dir(&stray)?;

    let coordinator = TestCoordinator::start(files.clone(), test_config()).await?;
    let mut control = coordinator.control().await?;
    let list = control.list().await?;
    let names: Vec<&str> = list.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["healthy"]);
    let broken: Vec<(&str, &str)> = list
        .broken
        .iter()
        .map(|b| (b.pipeline.as_str(), b.location.as_str()))
        .collect();
    let (corrupt_path, stray_path) = (corrupt.display().to_string(), stray.display().to_string());
    assert_eq!(
        broken,
        [
            ("orders", corrupt_path.as_str()),
            ("stray", stray_path.as_str())
        ]
    );
    assert_eq!(coordinator.metrics.broken_pipelines.get(), 2);
    assert_eq!(
        health_of(&coordinator, pipeline_health_service("orders")).await?,
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        health_of(&coordinator, String::new()).await?,
        ServingStatus::Serving as i32
    );

    let refused = control.get(&pipeline("orders")).await.expect_err("corrupt");
    let refused = refused.status().expect("a refusal");
    assert_eq!(refused.code(), Code::DataLoss);
    assert!(
        refused.message().contains(&corrupt_path),
        "{}",
        refused.message()
    );
    // A gate cannot create over it, nor can a direct write.
    let gate = gate_identity_to(&identity("orders", Colour::Green, 0, 1));
    let mut raw = RawSession::open(&coordinator.endpoint(), hello(vec![gate])).await?;
    assert_eq!(raw.status().await?.code(), Code::DataLoss);
    let doc = cutover_core::PipelineDoc::new(
        PipelineName::new("orders")?,
        cutover_core::Colour::Green,
        Default::default(),
        cutover_core::Incarnation(1),
    );
    assert!(
        files
            .compare_and_swap(&PipelineName::new("orders")?, None, &doc)
            .await
            .is_err()
    );
    assert_eq!(std::fs::read(&corrupt)?, b"{ this is not json");

    // Repaired by an operator (a valid document put in its place): served
    // at the next request.
    let healthy = std::fs::read_to_string(files.path_of(&PipelineName::new("healthy")?))?;
    std::fs::write(&corrupt, healthy.replace("\"healthy\"", "\"orders\""))?;
    let status = control.get(&pipeline("orders")).await?;
    assert_eq!(status.name.as_str(), "orders");
    assert_eq!(
        coordinator.metrics.broken_pipelines.get(),
        1,
        "the stray directory is left"
    );
    assert_eq!(
        health_of(&coordinator, pipeline_health_service("orders")).await?,
        ServingStatus::Serving as i32
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_corrupted_while_served_answers_data_loss_until_repaired() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let files = store(dir.path())?;
    let coordinator = TestCoordinator::start(files.clone(), test_config()).await?;
    let client = Client::connect(
        ClientConfig::new(coordinator.endpoint()).progress_interval(Duration::from_millis(20)),
    )?;
    let pipeline = PipelineName::new("orders")?;
    let mut gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    gate.observe_watermark(Key(5_000));
    let mut control = coordinator.control().await?;
    wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > 5_000).await?;
    let path = files.path_of(&pipeline);
    let good = std::fs::read(&path)?;
    std::fs::write(&path, b"[1, 2")?;

    eventually(async || {
        Ok(control.get(&pipeline).await.is_err_and(|e| {
            e.status()
                .is_some_and(|s| s.code() == Code::DataLoss && s.message().contains("orders.json"))
        }))
    })
    .await?;
    let list = control.list().await?;
    assert_eq!(list.broken.len(), 1);
    assert!(list.pipelines.is_empty());
    // The gate keeps deciding below the horizon it holds.
    assert_eq!(gate.decide(Key(4_000)), cutover_client::Decision::Emit);
    // Its progress cannot move the horizon: nothing writes over the file.
    gate.observe_watermark(Key(50_000));
    assert_eq!(std::fs::read(&path)?, b"[1, 2");

    std::fs::write(&path, &good)?;
    eventually(async || Ok(control.get(&pipeline).await.is_ok())).await?;
    assert_eq!(coordinator.metrics.broken_pipelines.get(), 0);
    Ok(())
}
