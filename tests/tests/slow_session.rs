//! A session that stops reading neither slows the others nor makes the
//! coordinator buffer: it coalesces to the latest plan and, once it reads
//! again, gets that plan, not the backlog.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Key};
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Colour, Epoch, PipelineName};
use cutover_proto::convert::gate_identity_to;
use cutover_proto::v1;
use cutover_proto::v1::gate_service_client::GateServiceClient;
use cutover_tests::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_session_coalesces_and_never_holds_back_the_others() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let pipeline = PipelineName::new("orders")?;
    let client = Client::connect(
        ClientConfig::new(coordinator.endpoint()).progress_interval(Duration::from_millis(5)),
    )?;
    let mut gate = client.gate(identity("orders", Colour::Green, 0, 2))?;
    tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, Epoch(1))).await?;

    // The slow session: registers a gate, then never reads (and advertises a
    // small HTTP/2 window, so the transport stops taking frames early).
    let channel = tonic::transport::Endpoint::from_shared(coordinator.endpoint())?
        .initial_stream_window_size(1024)
        .initial_connection_window_size(1024)
        .connect()
        .await?;
    let mut raw = GateServiceClient::new(channel);
    let (tx, rx) = mpsc::channel(4);
    tx.send(v1::ClientMessage {
        kind: Some(v1::client_message::Kind::Hello(v1::Hello {
            client_name: "slow".into(),
            gates: vec![gate_identity_to(&identity("orders", Colour::Green, 1, 2))],
            held: vec![],
        })),
    })
    .await?;
    let mut slow = raw.session(ReceiverStream::new(rx)).await?.into_inner();

    // 5,000 horizon raises (more than the transport buffers for a reader
    // that stopped); the healthy client follows each one.
    let mut epoch = 1;
    for step in 1..=5_000i64 {
        gate.observe_watermark(Key(step * 1_000));
        let next = Epoch(epoch + 1);
        tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, next)).await?;
        epoch = client.plan(&pipeline).map_or(epoch, |p| p.epoch.0);
    }
    let coalesced = coordinator.metrics.updates_coalesced.get();
    assert!(coalesced > 0, "the slow session never fell behind");

    // Reading again, the slow session reaches the latest epoch without
    // receiving every intermediate one.
    let mut frames = 0;
    let latest = loop {
        let message = tokio::time::timeout(LIMIT, slow.message())
            .await??
            .expect("open stream");
        frames += 1;
        let reached = match message.kind {
            Some(v1::server_message::Kind::Snapshot(s)) => s.plan.map_or(0, |p| p.epoch),
            Some(v1::server_message::Kind::HorizonGrant(g)) => g.epoch,
            None => 0,
        };
        if reached >= epoch {
            break reached;
        }
    };
    assert!(latest >= epoch);
    assert!(
        frames < 5_000,
        "{frames} frames: the backlog was delivered instead of the latest state"
    );
    println!("{epoch} epochs, slow session read {frames} frames, {coalesced} updates coalesced");
    drop(tx);
    Ok(())
}
