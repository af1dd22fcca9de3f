//! `kill -9` of the coordinator process at random points of a transition
//! (scheduled, cutting over, drained) with 112 gates attached over gRPC;
//! restarted on the same store and port, the gates reconnect and resume;
//! no record is duplicated or lost, epochs never go back, the plan is
//! intact. On the file store and on a real etcd.

use std::time::Duration;

use cutover_client::ControlClient;
use cutover_core::{Colour, Phase, PipelineName, PipelineStatus};
use cutover_tests::etcd::EtcdServer;
use cutover_tests::process::CoordinatorProcess;
use cutover_tests::workload::{RunningJob, stream, tally};
use cutover_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LIMIT: Duration = Duration::from_secs(60);
const RECORDS: u32 = 30_000;

async fn status(endpoint: &str, name: &str) -> anyhow::Result<PipelineStatus> {
    let mut control = ControlClient::connect(endpoint).await?;
    Ok(control.get(&pipeline(name)).await?)
}

/// Kills the coordinator (after a random pause), restarts it, and checks
/// that nothing persisted was lost.
/// With `reconnect`, also waits until every gate connected before the kill
/// is back (only meaningful while no subtask finishes).
async fn crash(
    coordinator: &mut CoordinatorProcess,
    pipeline: &str,
    rng: &mut StdRng,
    reconnect: bool,
) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
    let before = status(&coordinator.endpoint(), pipeline).await?;
    coordinator.kill9()?;
    let started = std::time::Instant::now();
    coordinator.restart().await?;
    let serving = started.elapsed();
    let after = status(&coordinator.endpoint(), pipeline).await?;
    assert!(
        epoch_of(&after) >= epoch_of(&before),
        "epoch went back from {} to {}",
        epoch_of(&before),
        epoch_of(&after)
    );
    assert!(
        horizon_of(&after) >= horizon_of(&before),
        "the horizon went back"
    );
    let segments = |s: &PipelineStatus| s.plan.timeline.clone();
    assert_eq!(
        segments(&after),
        segments(&before),
        "the plan changed across the crash"
    );
    if !reconnect {
        println!("restart after kill: serving in {serving:?}");
        return Ok(());
    }
    // Every gate that was connected before is back.
    let connected = |s: &PipelineStatus| s.blue.connected + s.green.connected;
    let expected = connected(&before);
    let mut control = ControlClient::connect(coordinator.endpoint()).await?;
    wait_for_status(&mut control, pipeline, LIMIT, |s| connected(s) >= expected).await?;
    println!(
        "restart after kill: serving in {serving:?}, {expected} gates reconnected in {:?}",
        started.elapsed()
    );
    Ok(())
}

async fn crash_through_a_transition(store: &str, seed: u64) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut coordinator = CoordinatorProcess::start(store, &["--horizon-window", "1s"]).await?;
    let endpoints = vec![coordinator.endpoint()];
    let name = format!("crash-{seed}");
    let pipeline = PipelineName::new(&name)?;
    let spec = stream(RECORDS, seed);
    let total = RECORDS as usize;

    let green = RunningJob::start(endpoints.clone(), &pipeline, &spec, Colour::Green, 48, 4);
    green.reach(total, 0.15).await;
    let blue = RunningJob::start(endpoints.clone(), &pipeline, &spec, Colour::Blue, 64, 4);
    blue.reach(total, 0.05).await;

    // Scheduled a few windows ahead, so the first crash lands while it is
    // still abortable.
    let mut control = ControlClient::connect(coordinator.endpoint()).await?;
    // The horizon moves on while we ask: retry on "below the horizon".
    loop {
        let now = status(&coordinator.endpoint(), &name).await?;
        let at = horizon_of(&now) + 60_000;
        match schedule(&mut control, &name, schedule_at(Colour::Blue, at, true)).await {
            Ok(_) => break,
            Err(e) if e.to_string().contains("below the horizon") => continue,
            Err(e) => return Err(e),
        }
    }
    let phase = status(&coordinator.endpoint(), &name).await?.phase;
    assert_eq!(phase, Some(Phase::Scheduled));
    crash(&mut coordinator, &name, &mut rng, true)
        .await
        .map_err(|e| e.context("crash while SCHEDULED"))?;

    // Waits for the phase or a later one.
    let reached = |phase: Phase, s: &PipelineStatus| match phase {
        Phase::CuttingOver => matches!(s.phase, Some(Phase::CuttingOver | Phase::Drained)),
        other => s.phase == Some(other),
    };
    for phase in [Phase::CuttingOver, Phase::Drained] {
        let mut control = ControlClient::connect(coordinator.endpoint()).await?;
        wait_for_status(&mut control, &name, LIMIT, |s| reached(phase, s)).await?;
        crash(&mut coordinator, &name, &mut rng, false)
            .await
            .map_err(|e| e.context(format!("crash while {phase:?}")))?;
    }
    let after = status(&coordinator.endpoint(), &name).await?;
    assert_eq!(after.phase, Some(Phase::Drained), "DRAINED is persisted");
    let mut control = ControlClient::connect(coordinator.endpoint()).await?;
    control.complete(&pipeline).await?;

    let (green, blue) = (green.finish().await?, blue.finish().await?);
    let (duplicates, gaps) = tally(total, &green, &blue);
    println!(
        "{store}: GREEN emitted {}, BLUE emitted {}, duplicates {duplicates}, gaps {gaps}",
        green.emitted.len(),
        blue.emitted.len()
    );
    assert_eq!((duplicates, gaps), (0, 0));
    assert!(!green.emitted.is_empty() && !blue.emitted.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_on_the_file_store_loses_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    crash_through_a_transition(&format!("file:{}", dir.path().display()), 11).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_on_etcd_loses_nothing() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    crash_through_a_transition(&format!("etcd:{}", etcd.endpoint), 12).await
}
