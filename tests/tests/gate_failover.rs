//! A client given several coordinators stays on the one it has while that
//! one answers, and moves to the next when it is gone: its gates keep
//! deciding below the horizon they hold meanwhile, and resume on the next
//! coordinator from the epoch they hold.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour, Decision, Key};
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Epoch, PipelineName};
use cutover_tests::*;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_moves_to_the_next_coordinator_only_when_its_own_is_gone() -> anyhow::Result<()> {
    let store = Arc::new(MemoryStore::new());
    let a = TestCoordinator::start(store.clone(), test_config()).await?;
    let b = TestCoordinator::start(store.clone(), test_config()).await?;
    let client = Client::connect(
        ClientConfig::new(format!("{}, {}", a.endpoint(), b.endpoint()))
            .progress_interval(Duration::from_millis(20))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )?;
    let pipeline = PipelineName::new("orders")?;
    let mut gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    gate.observe_watermark(Key(10_000));
    let mut control_a = a.control().await?;
    wait_for_status(&mut control_a, "orders", LIMIT, |s| horizon_of(s) > 10_000).await?;
    assert_eq!(client.sessions_opened(), 1);
    assert_eq!(
        (a.metrics.gates.get(), b.metrics.gates.get()),
        (1, 0),
        "the first coordinator listed serves it"
    );

    let mut connected = client.connected();
    a.stop().await?;
    tokio::time::timeout(LIMIT, connected.wait_for(|c| !*c)).await??;
    // Cut off: the gate decides below the horizon it holds.
    assert_eq!(gate.decide(Key(9_000)), Decision::Emit);
    tokio::time::timeout(LIMIT, connected.wait_for(|c| *c)).await??;
    assert_eq!(client.sessions_opened(), 2);

    // B (the only one left) moves the horizon with the gate's progress,
    // from the epoch the gate held.
    let held = client.plan(&pipeline).map(|p| p.epoch).unwrap_or_default();
    gate.observe_watermark(Key(20_000));
    let mut control_b = b.control().await?;
    let passed =
        wait_for_status(&mut control_b, "orders", LIMIT, |s| horizon_of(s) > 20_000).await?;
    assert!(epoch_of(&passed) > held.0);
    assert_eq!(
        b.metrics.gates.get(),
        1,
        "the next coordinator serves it now"
    );
    tokio::time::timeout(LIMIT, gate.wait_until_decidable(Key(20_000))).await?;
    assert_eq!(gate.decide(Key(20_000)), Decision::Emit);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_malformed_endpoint_list_is_refused() {
    for bad in ["", " , ", "http://ok:7700,not a uri"] {
        assert!(
            Client::connect(ClientConfig::new(bad)).is_err(),
            "{bad:?} must be refused"
        );
    }
}
