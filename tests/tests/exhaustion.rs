//! Callers that hold resources without using them: a gate session that
//! never says Hello is closed after the first-message timeout, and the
//! coordinator goes on serving the gates that do speak.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour};
use cutover_coordinator::CoordinatorConfig;
use cutover_coordinator::store::MemoryStore;
use cutover_proto::v1;
use cutover_proto::v1::gate_service_client::GateServiceClient;
use cutover_tests::{TestCoordinator, identity, test_config};
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
