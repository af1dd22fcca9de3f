//! End to end over gRPC: the defects independent clients found in the
//! protocol's edges, each refused or handled as the proto now says.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour, Decision, Key};
use cutover_coordinator::store::{FileStore, MemoryStore};
use cutover_core::{CutoverAt, Epoch, Phase, PipelineName, ScheduleRequest};
use cutover_proto::convert::gate_identity_to;
use cutover_proto::v1;
use cutover_proto::v1::client_message::Kind;
use cutover_tests::raw_session::{RawSession, hello};
use cutover_tests::*;
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(10);

fn quick_client(endpoint: &str) -> anyhow::Result<Client> {
    Ok(Client::connect(
        ClientConfig::new(endpoint)
            .progress_interval(Duration::from_millis(20))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_deleted_and_created_again_reaches_gates_that_held_the_old_one()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = || -> anyhow::Result<Arc<FileStore>> {
        Ok(Arc::new(
            FileStore::open(dir.path())?.with_poll_interval(Duration::from_millis(20)),
        ))
    };
    let first = TestCoordinator::start(store()?, test_config()).await?;
    let address = first.address;
    let client = quick_client(&first.endpoint())?;
    let pipeline = PipelineName::new("orders")?;
    let mut gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    // Many epochs: the horizon follows the watermark.
    for step in 1..=20 {
        gate.observe_watermark(Key(step * 1_000));
        tokio::time::timeout(
            LIMIT,
            client.wait_for_plan(&pipeline, |p| p.horizon > Key(step * 1_000)),
        )
        .await?;
    }
    let old = client.plan(&pipeline).expect("a plan");
    assert!(old.epoch >= Epoch(10), "{old:?}");
    first.stop().await?;

    // While the gate is cut off, someone deletes the pipeline and creates it
    // again, owned by BLUE, through another coordinator on the same store.
    let other = TestCoordinator::start(store()?, test_config()).await?;
    let mut control = other.control().await?;
    control.delete(&pipeline).await?;
    let created = control.create(&pipeline, Colour::Blue, None).await?;
    let plan = created.plan;
    assert_eq!(plan.epoch, Epoch(1));
    assert_ne!(plan.incarnation, old.incarnation);
    other.stop().await?;

    // The gate's coordinator comes back: the gate installs the new
    // incarnation although its epoch is lower, and decides by it.
    let _back = TestCoordinator::start_at(address, store()?, test_config()).await?;
    let new = tokio::time::timeout(
        LIMIT,
        client.wait_for_plan(&pipeline, |p| p.incarnation != old.incarnation),
    )
    .await?;
    assert_eq!(new.incarnation, plan.incarnation);
    gate.observe_watermark(Key(30_000));
    tokio::time::timeout(LIMIT, gate.wait_until_decidable(Key(30_000))).await?;
    assert_eq!(gate.decide(Key(30_000)), Decision::Drop, "BLUE owns it now");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_leniency_is_gone() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let endpoint = coordinator.endpoint();
    // Each case its own gates: a session just dropped may still hold its
    // gates for a moment.
    let gate = |subtask| gate_identity_to(&identity("orders", Colour::Green, subtask, 8));

    // The same gate twice in one hello.
    let mut raw = RawSession::open(&endpoint, hello(vec![gate(0), gate(0)])).await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("twice"), "{}", status.message());

    // ... and in one AttachGates.
    let other = gate(2);
    let mut raw = RawSession::open(&endpoint, hello(vec![gate(1)])).await?;
    raw.snapshot().await?;
    raw.send(Kind::Attach(v1::AttachGates {
        gates: vec![other.clone(), other],
        held: vec![],
    }))
    .await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // An ack for a pipeline without a gate on the session.
    let mut raw = RawSession::open(&endpoint, hello(vec![gate(3)])).await?;
    raw.snapshot().await?;
    raw.send(Kind::Ack(v1::Ack {
        pipeline: "payments".into(),
        epoch: 1,
    }))
    .await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("payments"),
        "{}",
        status.message()
    );

    // A hello claiming an epoch of this incarnation that never was.
    let mut raw = RawSession::open(&endpoint, hello(vec![gate(4)])).await?;
    let incarnation = raw.snapshot().await?.plan.expect("a plan").incarnation;
    let mut raw = RawSession::open(
        &endpoint,
        Kind::Hello(v1::Hello {
            client_name: "raw".into(),
            gates: vec![gate(5)],
            held: vec![v1::HeldEpoch {
                pipeline: "orders".into(),
                epoch: 50,
                incarnation,
            }],
        }),
    )
    .await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("50"), "{}", status.message());

    // An epoch of another incarnation counts as nothing held: a snapshot.
    let mut raw = RawSession::open(
        &endpoint,
        Kind::Hello(v1::Hello {
            client_name: "raw".into(),
            gates: vec![gate(6)],
            held: vec![v1::HeldEpoch {
                pipeline: "orders".into(),
                epoch: 50,
                incarnation: incarnation ^ 1,
            }],
        }),
    )
    .await?;
    let snapshot = raw.snapshot().await?.plan.expect("a plan");
    assert_eq!(snapshot.incarnation, incarnation);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_break_arithmetic_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let (coordinator, _client, _gate, _) = gate_past_a_cutover().await?;
    let mut control = coordinator.control().await?;
    let before = control.get(&pipeline("orders")).await?;
    for window in [1u64 << 63, u64::MAX, (1 << 40) + 1] {
        let refused = control
            .create(&pipeline("wide"), Colour::Green, Some(window))
            .await
            .expect_err("window out of bounds");
        assert_eq!(refused.code(), Some(Code::InvalidArgument), "{refused:?}");
        assert!(refused.to_string().contains("2^40"), "{refused}");
    }
    let rollback = |at, allowed_lateness| ScheduleRequest {
        at,
        allowed_lateness,
        ..ScheduleRequest::earliest(Colour::Green)
    };
    let cases = [
        (rollback(CutoverAt::Earliest, u64::MAX), "2^40"),
        (rollback(CutoverAt::Key(Key(i64::MAX)), 0), "2^62"),
    ];
    for (request, bound) in cases {
        let refused = control
            .schedule(&pipeline("orders"), request)
            .await
            .expect_err("out of bounds");
        assert_eq!(refused.code(), Some(Code::InvalidArgument), "{refused:?}");
        assert!(refused.to_string().contains(bound), "{refused}");
    }
    let after = control.get(&pipeline("orders")).await?;
    assert_eq!(epoch_of(&after), epoch_of(&before), "nothing was written");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_and_abort_racing_never_both_succeed() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let client = quick_client(&coordinator.endpoint())?;
    let mut gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(
        LIMIT,
        client.wait_for_epoch(&PipelineName::new("orders")?, Epoch(1)),
    )
    .await?;
    gate.observe_watermark(Key(1_000));
    let mut control = coordinator.control().await?;
    let ready = wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > 1_000).await?;
    let base = horizon_of(&ready);
    let (mut promoted, mut aborted) = (0, 0);
    for round in 0..40i64 {
        let status = control.get(&pipeline("orders")).await?;
        let target = status.active.other();
        let at = base + (round + 1) * 100_000;
        control
            .schedule(&pipeline("orders"), schedule_at(target, at, false))
            .await?;
        let (mut a, mut b) = (control.clone(), control.clone());
        let name = pipeline("orders");
        let promote = async { a.promote(&name).await };
        let abort = async { b.abort(&name).await };
        let (p, ab) = tokio::join!(promote, abort);
        let status = control.get(&pipeline("orders")).await?;
        match (p, ab) {
            (Ok(_), Err(refused)) => {
                promoted += 1;
                assert_eq!(
                    refused.code(),
                    Some(Code::FailedPrecondition),
                    "{refused:?}"
                );
                // Promoted: irrevocable, although the horizon has not
                // reached the cutover yet.
                assert_eq!(status.phase, Some(Phase::CuttingOver), "round {round}");
                assert!(horizon_of(&status) <= at);
            }
            (Err(refused), Ok(_)) => {
                aborted += 1;
                assert_eq!(
                    refused.code(),
                    Some(Code::FailedPrecondition),
                    "{refused:?}"
                );
                assert_eq!(status.phase, Some(Phase::Aborted), "round {round}");
            }
            (p, ab) => panic!("round {round}: promote {p:?}, abort {ab:?}"),
        }
    }
    println!("40 races: promote won {promoted}, abort won {aborted}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_operator_is_forgotten_through_the_control_api_and_the_cli() -> anyhow::Result<()>
{
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let client = quick_client(&coordinator.endpoint())?;
    let pipeline = PipelineName::new("orders")?;
    let mut sink = client.gate(identity("orders", Colour::Green, 0, 1))?;
    tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    sink.observe_watermark(Key(1_000));
    let mut control = coordinator.control().await?;
    wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > 1_000).await?;
    // A stray operator (a broken client announcing parallelism 5000) gets
    // recorded with the schedule and would hold DRAINED back forever.
    let stray_client = quick_client(&coordinator.endpoint())?;
    let mut stray = identity("orders", Colour::Green, 0, 5_000);
    stray.gate_uid = "stray".into();
    let stray_gate = stray_client.gate(stray)?;
    wait_for_status(&mut control, "orders", LIMIT, |s| s.green.connected == 2).await?;
    let (_, at) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Blue),
    )
    .await?;
    sink.observe_watermark(Key(at + 10));
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.phase == Some(Phase::CuttingOver)
    })
    .await?;

    let refused = control
        .forget_operator(&pipeline, Colour::Green, "stray")
        .await
        .expect_err("connected");
    assert_eq!(
        refused.code(),
        Some(Code::FailedPrecondition),
        "{refused:?}"
    );
    drop(stray_gate);
    stray_client.shutdown().await;
    wait_for_status(&mut control, "orders", LIMIT, |s| s.green.connected == 1).await?;
    assert_eq!(
        control.get(&pipeline).await?.phase,
        Some(Phase::CuttingOver),
        "the stray operator holds DRAINED back"
    );

    // Through the command line.
    let endpoint = coordinator.endpoint();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(process::cutover_binary()?)
            .args([
                "forget-operator",
                "orders",
                "--colour",
                "green",
                "--uid",
                "stray",
                "--endpoint",
                &endpoint,
            ])
            .output()
            .map_err(anyhow::Error::from)
    })
    .await??;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.phase == Some(Phase::Drained)
    })
    .await?;
    let unknown = control
        .forget_operator(&pipeline, Colour::Green, "stray")
        .await
        .expect_err("forgotten already");
    assert_eq!(unknown.code(), Some(Code::NotFound), "{unknown:?}");
    drop(sink);
    Ok(())
}
