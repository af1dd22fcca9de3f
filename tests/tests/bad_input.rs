//! Every bad input gets a clear gRPC status and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Key};
use cutover_coordinator::CoordinatorConfig;
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Colour, Epoch, Phase, PipelineName, PipelineStatus, ScheduleRequest};
use cutover_proto::convert::{gate_identity_to, schedule_to};
use cutover_proto::v1;
use cutover_proto::v1::client_message::Kind;
use cutover_tests::raw_session::{RawSession, hello};
use cutover_tests::*;
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(10);

/// A coordinator with pipeline `orders`, one GREEN gate at watermark 10 000
/// and a granted horizon; returns the client holding the gate.
async fn with_pipeline(
    coordinator: &TestCoordinator,
) -> anyhow::Result<(Client, cutover_client::Gate, PipelineStatus)> {
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
    let status =
        wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > i64::MIN).await?;
    Ok((client, gate, status))
}

async fn get(coordinator: &TestCoordinator) -> anyhow::Result<PipelineStatus> {
    let mut control = coordinator.control().await?;
    Ok(control.get(&pipeline("orders")).await?)
}

#[tokio::test]
async fn unknown_pipeline_is_not_found() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut control = coordinator.control().await?;
    let refused = control.get(&pipeline("nope")).await.expect_err("unknown");
    assert_eq!(refused.code(), Some(Code::NotFound));
    assert!(refused.to_string().contains("nope"), "{refused}");
    let refused = control
        .schedule(&pipeline("nope"), ScheduleRequest::earliest(Colour::Blue))
        .await
        .expect_err("unknown");
    assert_eq!(refused.code(), Some(Code::NotFound));
    // A name the typed client cannot even form.
    let status = coordinator
        .raw_control()
        .await?
        .get_pipeline(v1::GetPipelineRequest {
            pipeline: "Not_A_Name".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    Ok(())
}

#[tokio::test]
async fn a_cutover_below_the_horizon_names_the_earliest_key() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let (_client, _gate, before) = with_pipeline(&coordinator).await?;
    let mut control = coordinator.control().await?;
    let refused = control
        .schedule(&pipeline("orders"), schedule_at(Colour::Blue, 5, true))
        .await
        .expect_err("below the horizon");
    assert_eq!(refused.code(), Some(Code::FailedPrecondition));
    let earliest = format!("earliest allowed key is {}", horizon_of(&before));
    assert!(refused.to_string().contains(&earliest), "{refused}");
    assert_eq!(
        epoch_of(&get(&coordinator).await?),
        epoch_of(&before),
        "nothing changed"
    );
    // A request without a key or EARLIEST is malformed.
    let mut raw = coordinator.raw_control().await?;
    let earliest_blue = || {
        schedule_to(
            &pipeline("orders"),
            &ScheduleRequest::earliest(Colour::Blue),
        )
    };
    let mut request = earliest_blue();
    request.at = None;
    assert_eq!(
        raw.schedule_transition(request)
            .await
            .expect_err("no key")
            .code(),
        Code::InvalidArgument
    );
    let mut request = earliest_blue();
    request.target = 0;
    assert_eq!(
        raw.schedule_transition(request)
            .await
            .expect_err("no colour")
            .code(),
        Code::InvalidArgument
    );
    Ok(())
}

#[tokio::test]
async fn abort_is_refused_once_irrevocable_and_a_second_schedule_while_pending()
-> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let (_client, mut gate, before) = with_pipeline(&coordinator).await?;
    let mut control = coordinator.control().await?;
    let far = horizon_of(&before) + 100_000;
    let orders = pipeline("orders");
    control
        .schedule(&orders, schedule_at(Colour::Blue, far, true))
        .await?;
    let pending = get(&coordinator).await?;
    let refused = control
        .schedule(&orders, schedule_at(Colour::Green, far + 1, true))
        .await
        .expect_err("one is pending");
    assert_eq!(refused.code(), Some(Code::FailedPrecondition));
    assert!(refused.to_string().contains("still pending"), "{refused}");
    assert_eq!(epoch_of(&get(&coordinator).await?), epoch_of(&pending));

    control.abort(&orders).await?;
    let (_, at) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Blue),
    )
    .await?;
    gate.observe_watermark(Key(at + 10));
    let passed = wait_for_status(&mut control, "orders", LIMIT, |s| horizon_of(s) > at).await?;
    let refused = control.abort(&orders).await.expect_err("irrevocable");
    assert_eq!(refused.code(), Some(Code::FailedPrecondition));
    assert!(refused.to_string().contains("irrevocable"), "{refused}");
    let after = get(&coordinator).await?;
    assert_eq!(
        after.plan.timeline.segments().len(),
        passed.plan.timeline.segments().len()
    );
    assert_ne!(after.phase, Some(Phase::Aborted));
    Ok(())
}

#[tokio::test]
async fn the_same_gate_on_two_live_sessions_is_refused() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let (_client, _gate, before) = with_pipeline(&coordinator).await?;
    let same = gate_identity_to(&identity("orders", Colour::Green, 0, 1));
    let mut raw = RawSession::open(&coordinator.endpoint(), hello(vec![same])).await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        status.message().contains("GREEN/gate[0]"),
        "{}",
        status.message()
    );
    let after = get(&coordinator).await?;
    let count = |s: &PipelineStatus| (s.green.expected, s.green.connected);
    assert_eq!(count(&after), (1, 1), "the live registration is untouched");
    assert_eq!(count(&after), count(&before));
    Ok(())
}

#[tokio::test]
async fn a_subtask_index_beyond_parallelism_is_refused() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut bad = gate_identity_to(&identity("orders", Colour::Green, 0, 2));
    bad.subtask_index = 2;
    let mut raw = RawSession::open(&coordinator.endpoint(), hello(vec![bad])).await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("below parallelism 2"),
        "{}",
        status.message()
    );
    let mut control = coordinator.control().await?;
    let missing = control.get(&pipeline("orders")).await;
    assert_eq!(
        missing.expect_err("not created").code(),
        Some(Code::NotFound),
        "nothing was created"
    );
    Ok(())
}

#[tokio::test]
async fn protocol_violations_end_the_session() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let endpoint = coordinator.endpoint();
    let gate = gate_identity_to(&identity("orders", Colour::Blue, 0, 1));

    // An ack for an epoch never sent.
    let mut raw = RawSession::open(&endpoint, hello(vec![gate.clone()])).await?;
    let snapshot = raw.snapshot().await?;
    let sent = snapshot.plan.as_ref().map_or(0, |p| p.epoch);
    raw.send(Kind::Ack(v1::Ack {
        pipeline: "orders".into(),
        epoch: sent + 5,
    }))
    .await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("never sent") || status.message().contains("was sent epoch"),
        "{}",
        status.message()
    );

    // A first message that is not a hello.
    let mut raw = RawSession::open(
        &endpoint,
        Kind::Ack(v1::Ack {
            pipeline: "orders".into(),
            epoch: 1,
        }),
    )
    .await?;
    let status = raw.status().await?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("hello"), "{}", status.message());

    // Progress for a gate the session does not carry.
    let mut raw = RawSession::open(&endpoint, hello(vec![gate])).await?;
    raw.snapshot().await?;
    let stranger = v1::GateRef {
        pipeline: "orders".into(),
        colour: v1::Colour::Blue as i32,
        gate_uid: "other".into(),
        subtask_index: 0,
    };
    raw.send(Kind::Progress(v1::Progress {
        gates: vec![v1::GateProgress {
            gate: Some(stranger),
            ..Default::default()
        }],
    }))
    .await?;
    assert_eq!(raw.status().await?.code(), Code::FailedPrecondition);
    Ok(())
}

#[tokio::test]
async fn oversized_messages_are_refused() -> anyhow::Result<()> {
    let config = CoordinatorConfig {
        max_message_bytes: 64 * 1024,
        ..test_config()
    };
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), config).await?;
    let huge = Kind::Hello(v1::Hello {
        client_name: "x".repeat(128 * 1024),
        gates: vec![],
        held: vec![],
    });
    let mut raw = RawSession::open(&coordinator.endpoint(), huge).await?;
    let status = raw.status().await?;
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    let mut control = coordinator.raw_control().await?;
    let big = control
        .get_pipeline(v1::GetPipelineRequest {
            pipeline: "p".repeat(128 * 1024),
        })
        .await
        .expect_err("too big");
    assert!(
        matches!(big.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{big:?}"
    );
    Ok(())
}
