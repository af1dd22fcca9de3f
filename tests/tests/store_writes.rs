//! Store writes grow with event time, not with the number of gates: the
//! same watermark progress and the same transition cost the same writes
//! with 4 gates and with 64.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Gate, Key};
use cutover_coordinator::metrics::WriteLabel;
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Colour, Epoch, PipelineName};
use cutover_proto::v1;
use cutover_tests::*;

const LIMIT: Duration = Duration::from_secs(10);
const STEPS: i64 = 40;

/// Moves every gate to `watermark` and waits until the horizon passes it.
async fn advance(
    clients: &[Client],
    gates: &mut [Gate],
    pipeline: &PipelineName,
    watermark: i64,
) -> anyhow::Result<()> {
    for gate in gates.iter_mut() {
        gate.observe_watermark(Key(watermark));
    }
    for client in clients {
        loop {
            let plan = client.plan(pipeline).expect("a plan");
            if plan.horizon > Key(watermark) {
                break;
            }
            tokio::time::timeout(LIMIT, client.wait_for_epoch(pipeline, plan.epoch.next())).await?;
        }
    }
    Ok(())
}

/// Writes of a run: `STEPS` windows of event time and one transition.
async fn writes_with(gates_per_colour: u32) -> anyhow::Result<u64> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let pipeline = PipelineName::new("orders")?;
    let clients: Vec<Client> = (0..2)
        .map(|_| {
            Client::connect(
                ClientConfig::new(coordinator.endpoint())
                    .progress_interval(Duration::from_millis(10)),
            )
        })
        .collect::<Result<_, _>>()?;
    let mut gates = Vec::new();
    for i in 0..gates_per_colour {
        gates.push(clients[0].gate(identity("orders", Colour::Green, i, gates_per_colour))?);
    }
    tokio::time::timeout(LIMIT, clients[0].wait_for_epoch(&pipeline, Epoch(1))).await?;
    for i in 0..gates_per_colour {
        gates.push(clients[1].gate(identity("orders", Colour::Blue, i, gates_per_colour))?);
    }
    tokio::time::timeout(LIMIT, clients[1].wait_for_epoch(&pipeline, Epoch(1))).await?;
    let mut control = coordinator.control().await?;
    for step in 1..=STEPS / 2 {
        advance(&clients, &mut gates, &pipeline, step * 1_000).await?;
    }
    let (_, at) = schedule(&mut control, schedule_earliest("orders", v1::Colour::Blue)).await?;
    for step in STEPS / 2 + 1..=STEPS {
        advance(&clients, &mut gates, &pipeline, step * 1_000).await?;
    }
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.phase == v1::Phase::Drained as i32
    })
    .await?;
    control
        .complete_transition(v1::CompleteTransitionRequest {
            pipeline: "orders".into(),
        })
        .await?;
    assert!(at > 0);
    let label = WriteLabel {
        pipeline: "orders".into(),
        outcome: "written",
    };
    Ok(coordinator.metrics.store_writes.get_or_create(&label).get())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_writes_do_not_grow_with_the_number_of_gates() -> anyhow::Result<()> {
    let few = writes_with(2).await?;
    let many = writes_with(32).await?;
    println!(
        "store writes for {STEPS} windows of event time and one transition: {few} with 4 gates, {many} with 64 gates"
    );
    // Creation, one horizon step per window, schedule, DRAINED, complete.
    let bound = 1 + STEPS as u64 + 3;
    assert!(
        few <= bound && many <= bound,
        "{few} and {many} writes, at most {bound} expected"
    );
    assert!(
        few.abs_diff(many) <= 1,
        "{few} writes with 4 gates, {many} with 64"
    );
    Ok(())
}
