//! End to end over real gRPC on loopback: several client processes' worth
//! of gates (one `Client` each), a cutover at EARLIEST through to DRAINED
//! and COMPLETED, an abort before the horizon passes, a rollback after, and
//! a manual promotion.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Decision, Gate, Key};
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Colour, Epoch, Phase, PipelineName, ScheduleRequest};
use cutover_tests::*;

const LIMIT: Duration = Duration::from_secs(10);

struct Fleet {
    clients: Vec<Client>,
    green: Vec<Gate>,
    blue: Vec<Gate>,
}

/// GREEN with parallelism 3 over two clients, BLUE with parallelism 2 on a
/// third, all gates at watermark `watermark`.
async fn fleet(endpoint: &str, pipeline: &str, watermark: i64) -> anyhow::Result<Fleet> {
    let clients: Vec<Client> = (0..3)
        .map(|i| {
            Client::connect(
                ClientConfig::new(endpoint)
                    .client_name(format!("tm-{i}"))
                    .progress_interval(Duration::from_millis(20)),
            )
        })
        .collect::<Result<_, _>>()?;
    let mut green = Vec::new();
    for i in 0..3 {
        green.push(clients[(i % 2) as usize].gate(identity(pipeline, Colour::Green, i, 3))?);
    }
    // GREEN runs first: its gates create the pipeline, owned by GREEN.
    let name = PipelineName::new(pipeline)?;
    for client in &clients[..2] {
        tokio::time::timeout(LIMIT, client.wait_for_epoch(&name, Epoch(1))).await?;
    }
    let blue = vec![
        clients[2].gate(identity(pipeline, Colour::Blue, 0, 2))?,
        clients[2].gate(identity(pipeline, Colour::Blue, 1, 2))?,
    ];
    let mut fleet = Fleet {
        clients,
        green,
        blue,
    };
    // Every client holds a first plan: the pipeline exists.
    fleet.all_installed(pipeline, 1).await?;
    fleet.watermark(watermark);
    Ok(fleet)
}

impl Fleet {
    fn watermark(&mut self, watermark: i64) {
        for gate in self.green.iter_mut().chain(self.blue.iter_mut()) {
            gate.observe_watermark(Key(watermark));
        }
    }

    async fn all_installed(&self, pipeline: &str, epoch: u64) -> anyhow::Result<()> {
        let name = PipelineName::new(pipeline)?;
        for client in &self.clients {
            tokio::time::timeout(LIMIT, client.wait_for_epoch(&name, Epoch(epoch))).await?;
        }
        Ok(())
    }

    fn decisions(&self, key: i64) -> (Vec<Decision>, Vec<Decision>) {
        (
            self.green.iter().map(|g| g.peek(Key(key))).collect(),
            self.blue.iter().map(|g| g.peek(Key(key))).collect(),
        )
    }
}

fn all(decision: Decision, n: usize) -> Vec<Decision> {
    vec![decision; n]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_at_earliest_runs_to_drained_and_completed() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut control = coordinator.control().await?;
    let mut fleet = fleet(&coordinator.endpoint(), "orders", 10_000).await?;
    let ready = wait_for_status(&mut control, "orders", LIMIT, |s| {
        horizon_of(s) > i64::MIN && s.blue.expected == 2 && s.green.connected == 3
    })
    .await?;
    assert_eq!(
        ready.active,
        Colour::Green,
        "the first gate's colour owns the new pipeline"
    );

    let (scheduled, at) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Blue),
    )
    .await?;
    assert_eq!(at, horizon_of(&ready), "EARLIEST is the persisted horizon");
    assert_eq!(scheduled.phase, Some(Phase::Scheduled));
    fleet.all_installed("orders", epoch_of(&scheduled)).await?;
    assert_eq!(
        fleet.decisions(at - 1),
        (all(Decision::Emit, 3), all(Decision::Drop, 2))
    );
    assert_eq!(
        fleet.decisions(at),
        (all(Decision::Hold, 3), all(Decision::Hold, 2)),
        "the cutover key is at the horizon"
    );

    // Gates move past the cutover: the horizon follows, the old colour drains.
    fleet.watermark(at + 10);
    let drained = wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.phase == Some(Phase::Drained)
    })
    .await?;
    fleet.all_installed("orders", epoch_of(&drained)).await?;
    assert_eq!(
        fleet.decisions(at),
        (all(Decision::Drop, 3), all(Decision::Emit, 2))
    );
    assert_eq!(
        fleet.decisions(at - 1),
        (all(Decision::Emit, 3), all(Decision::Drop, 2)),
        "keys below the cutover never change hands"
    );
    let acked = wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.blue.acked == 2 && s.green.acked == 3
    })
    .await?;
    assert!(epoch_of(&acked) >= epoch_of(&drained));

    let completed = control.complete(&pipeline("orders")).await?;
    assert_eq!(completed.phase, Some(Phase::Completed));
    // GREEN's job is stopped: the completion retires the keys below the
    // cutover for both colours (GREEN decided them; BLUE never owned them)
    // and compacts the timeline into BLUE's one segment.
    assert_eq!(completed.plan.timeline.segments().len(), 1);
    fleet.all_installed("orders", epoch_of(&completed)).await?;
    assert_eq!(
        fleet.decisions(at - 1),
        (all(Decision::Drop, 3), all(Decision::Drop, 2)),
        "a key below the cutover is never emitted again, by either colour"
    );
    assert_eq!(
        fleet.decisions(at),
        (all(Decision::Drop, 3), all(Decision::Emit, 2))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_before_the_horizon_passes_restores_the_plan() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut control = coordinator.control().await?;
    let fleet = fleet(&coordinator.endpoint(), "orders", 10_000).await?;
    let ready =
        wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > i64::MIN).await?;
    let far = horizon_of(&ready) + 1_000_000;
    let scheduled = control
        .schedule(&pipeline("orders"), schedule_at(Colour::Blue, far, true))
        .await?;
    fleet.all_installed("orders", epoch_of(&scheduled)).await?;
    let aborted = control.abort(&pipeline("orders")).await?;
    assert_eq!(aborted.phase, Some(Phase::Aborted));
    assert_eq!(aborted.plan.timeline.segments().len(), 1);
    fleet.all_installed("orders", epoch_of(&aborted)).await?;
    let plan = fleet.clients[0]
        .plan(&PipelineName::new("orders")?)
        .expect("plan");
    assert_eq!(
        plan.timeline.segments().len(),
        1,
        "gates hold the restored timeline"
    );
    assert_eq!(plan.timeline.owner_of(Key(far)), Colour::Green);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_the_cutover_hands_back_later_keys() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut control = coordinator.control().await?;
    let mut fleet = fleet(&coordinator.endpoint(), "orders", 10_000).await?;
    wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > i64::MIN).await?;
    let (_, t1) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Blue),
    )
    .await?;
    fleet.watermark(t1 + 10);
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.phase == Some(Phase::Drained)
    })
    .await?;
    // Roll back without completing: GREEN takes keys from the new horizon on.
    let (_, t2) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Green),
    )
    .await?;
    assert!(t2 > t1);
    fleet.watermark(t2 + 10);
    let passed = wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > t2).await?;
    fleet.all_installed("orders", epoch_of(&passed)).await?;
    assert_eq!(
        fleet.decisions(t1 - 1),
        (all(Decision::Emit, 3), all(Decision::Drop, 2))
    );
    assert_eq!(
        fleet.decisions(t1),
        (all(Decision::Drop, 3), all(Decision::Emit, 2))
    );
    assert_eq!(
        fleet.decisions(t2),
        (all(Decision::Emit, 3), all(Decision::Drop, 2))
    );
    let history = coordinator
        .coordinator
        .cell(&PipelineName::new("orders")?)
        .await?
        .doc()
        .history;
    assert_eq!(
        history.last().map(|t| t.state),
        Some(cutover_core::TransitionState::Superseded)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_promotion_holds_the_horizon_at_the_cutover() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut control = coordinator.control().await?;
    let mut fleet = fleet(&coordinator.endpoint(), "orders", 10_000).await?;
    let ready =
        wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > i64::MIN).await?;
    let at = horizon_of(&ready) + 500;
    control
        .schedule(&pipeline("orders"), schedule_at(Colour::Blue, at, false))
        .await?;
    fleet.watermark(at + 5_000);
    let capped = wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) == at).await?;
    assert_eq!(capped.phase, Some(Phase::Scheduled), "still abortable");
    fleet.all_installed("orders", epoch_of(&capped)).await?;
    assert_eq!(
        fleet.decisions(at),
        (all(Decision::Hold, 3), all(Decision::Hold, 2))
    );
    // The horizon stays put while the gates push against it.
    fleet.watermark(at + 9_000);
    let status = control.get(&pipeline("orders")).await?;
    assert_eq!(horizon_of(&status), at);

    control.promote(&pipeline("orders")).await?;
    let passed = wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > at).await?;
    // Irrevocable now; the GREEN gates are already past the cutover, so it
    // may be drained in the same step.
    assert!(matches!(
        passed.phase,
        Some(Phase::CuttingOver | Phase::Drained)
    ));
    fleet.all_installed("orders", epoch_of(&passed)).await?;
    assert_eq!(
        fleet.decisions(at),
        (all(Decision::Drop, 3), all(Decision::Emit, 2))
    );
    Ok(())
}
