//! A gate cut off from the coordinator keeps deciding below its horizon,
//! holds at it, and resumes (from the epoch it holds) once the coordinator
//! is back on the same store.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Decision, Key};
use cutover_coordinator::store::FileStore;
use cutover_core::{Colour, Epoch, PipelineName, ScheduleRequest};
use cutover_tests::*;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_cut_off_decides_below_its_horizon_holds_at_it_and_resumes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = || -> anyhow::Result<Arc<FileStore>> { Ok(Arc::new(FileStore::open(dir.path())?)) };
    let coordinator = TestCoordinator::start(store()?, test_config()).await?;
    let address = coordinator.address;
    let config = ClientConfig::new(coordinator.endpoint())
        .progress_interval(Duration::from_millis(20))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100));
    let client = Client::connect(config)?;
    let pipeline = PipelineName::new("orders")?;
    // GREEN runs first: its first gate creates the pipeline, owned by GREEN.
    let mut green = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    let mut blue = client.gate(identity("orders", Colour::Blue, 0, 1))?;
    green.observe_watermark(Key(10_000));
    blue.observe_watermark(Key(10_000));
    let mut control = coordinator.control().await?;
    wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > i64::MIN).await?;
    let (_, at) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Blue),
    )
    .await?;
    green.observe_watermark(Key(at + 100));
    let passed =
        wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > at + 100).await?;
    tokio::time::timeout(
        LIMIT,
        client.wait_for_epoch(&pipeline, Epoch(epoch_of(&passed))),
    )
    .await?;
    let held = client.plan(&pipeline).expect("plan");
    let horizon = held.horizon.0;

    // The coordinator goes away.
    let mut connected = client.connected();
    coordinator.stop().await?;
    tokio::time::timeout(LIMIT, connected.wait_for(|c| !c)).await??;
    assert_eq!(green.decide(Key(at - 1)), Decision::Emit);
    assert_eq!(blue.decide(Key(at - 1)), Decision::Drop);
    assert_eq!(green.decide(Key(horizon - 1)), Decision::Drop);
    assert_eq!(blue.decide(Key(horizon - 1)), Decision::Emit);
    assert_eq!(
        blue.decide(Key(horizon)),
        Decision::Hold,
        "at the horizon it holds"
    );
    assert_eq!(
        blue.wait_until_decidable_blocking(Key(horizon), Duration::from_millis(50)),
        Decision::Hold,
        "no guess while cut off"
    );

    // Back on the same store and port: the gate resumes and its held record
    // becomes decidable.
    let coordinator = TestCoordinator::start_at(address, store()?, test_config()).await?;
    tokio::time::timeout(LIMIT, connected.wait_for(|c| *c)).await??;
    blue.observe_watermark(Key(horizon));
    let decision = tokio::time::timeout(LIMIT, blue.wait_until_decidable(Key(horizon))).await?;
    assert_eq!(decision, Decision::Emit);
    assert!(client.sessions_opened() >= 2);
    let plan = client.plan(&pipeline).expect("plan");
    assert!(
        plan.epoch > held.epoch,
        "epochs only move forward across the restart"
    );
    assert_eq!(
        plan.timeline, held.timeline,
        "the plan survived the restart"
    );
    drop(coordinator);
    Ok(())
}
