//! Callers that hold resources without using them or ask for more than
//! their share: a gate session that never says Hello is closed after the
//! first-message timeout, a caller's sessions and mutating calls are
//! limited, and the coordinator goes on serving the gates that do speak.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cutover_client::{Client, ClientConfig, Colour};
use cutover_coordinator::CoordinatorConfig;
use cutover_coordinator::admission::CallerLimits;
use cutover_coordinator::metrics::ControlLabel;
use cutover_coordinator::store::MemoryStore;
use cutover_proto::convert::gate_identity_to as gate_to;
use cutover_proto::v1;
use cutover_proto::v1::gate_service_client::GateServiceClient;
use cutover_tests::raw_session::{RawSession, hello};
use cutover_tests::{TestCoordinator, epoch_of, identity, pipeline, schedule_at, test_config};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_never_says_hello_is_closed() -> anyhow::Result<()> {
    let config = CoordinatorConfig {
        first_message_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), config).await?;
    // Streams opened and never written to.
    let mut silent = Vec::new();
    for _ in 0..20 {
        let mut client = GateServiceClient::connect(coordinator.endpoint()).await?;
        let (keep, rx) = mpsc::channel::<v1::ClientMessage>(1);
        let inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
        silent.push((keep, inbound));
    }
    // A gate that speaks is served meanwhile.
    let client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let _gate = client.gate(identity("orders", Colour::Blue, 0, 1))?;
    let mut connected = client.connected();
    tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|&c| c)).await??;
    for (_keep, mut inbound) in silent {
        let ended = tokio::time::timeout(Duration::from_secs(10), inbound.message()).await?;
        let status = ended.expect_err("closed with a status");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(status.message().contains("no Hello within"), "{status:?}");
    }
    assert!(*client.connected().borrow(), "the speaking gate stays");
    Ok(())
}

/// A caller holding as many sessions as it may is refused another, before
/// its first message; a session it closes gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_callers_limit_are_refused() -> anyhow::Result<()> {
    let config = CoordinatorConfig {
        caller_limits: CallerLimits {
            max_sessions_per_caller: 3,
            ..CallerLimits::default()
        },
        ..test_config()
    };
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), config).await?;
    let endpoint = coordinator.endpoint();
    let mut held = Vec::new();
    for subtask in 0..3 {
        let gate = identity("orders", Colour::Blue, subtask, 3);
        let mut session = RawSession::open(&endpoint, hello(vec![gate_to(&gate)])).await?;
        session.snapshot().await?;
        held.push(session);
    }
    let refused = RawSession::open(&endpoint, hello(vec![]))
        .await
        .err()
        .context("a fourth session was accepted")?;
    let status = refused
        .downcast_ref::<tonic::Status>()
        .context("refused with a gRPC status")?;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("already holds 3 gate sessions"),
        "{status:?}"
    );
    assert!(
        status.message().contains("--max-sessions-per-caller"),
        "{status:?}"
    );
    // The three sessions go on being served.
    let mut control = coordinator.control().await?;
    let status = control.get(&pipeline("orders")).await?;
    assert_eq!(status.gates(Colour::Blue).connected, 3);
    // One closes: a new session is accepted once its end is seen.
    drop(held.pop());
    let reopened = async {
        loop {
            match RawSession::open(&endpoint, hello(vec![])).await {
                Ok(session) => return session,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reopened).await?;
    Ok(())
}

/// Mutating control calls beyond a caller's allowance are refused with
/// the time to wait and change nothing; reading is not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_beyond_the_rate_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let config = CoordinatorConfig {
        caller_limits: CallerLimits {
            control_calls_per_second: 0.01,
            control_burst: 3,
            ..CallerLimits::default()
        },
        ..test_config()
    };
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), config).await?;
    let mut control = coordinator.control().await?;
    let orders = pipeline("orders");
    control.create(&orders, Colour::Blue, None).await?;
    control
        .schedule(&orders, schedule_at(Colour::Green, 1 << 40, false))
        .await?;
    let aborted = control.abort(&orders).await?;
    let refused = control
        .schedule(&orders, schedule_at(Colour::Green, 1 << 40, false))
        .await
        .expect_err("the fourth mutating call is over the burst");
    assert_eq!(refused.code(), Some(tonic::Code::ResourceExhausted));
    let message = refused
        .status()
        .map(|s| s.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("retry in"), "{message}");
    for _ in 0..50 {
        let now = control.get(&orders).await?;
        assert_eq!(epoch_of(&now), epoch_of(&aborted), "nothing changed");
        assert_eq!(now.phase, aborted.phase, "nothing changed");
    }
    let counted = coordinator
        .metrics
        .control_requests
        .get_or_create(&ControlLabel {
            method: "ScheduleTransition",
            code: "RESOURCE_EXHAUSTED",
        })
        .get();
    assert_eq!(counted, 1, "the refusal is audited and counted");
    Ok(())
}
