//! A raw gate session for tests that speak the protocol by hand: send what
//! the test wants, read what comes back.

use std::time::Duration;

use cutover_proto::v1;
use cutover_proto::v1::client_message::Kind;
use cutover_proto::v1::gate_service_client::GateServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// How long a read waits.
const LIMIT: Duration = Duration::from_secs(10);

/// A raw session.
pub struct RawSession {
    tx: mpsc::Sender<v1::ClientMessage>,
    inbound: tonic::Streaming<v1::ServerMessage>,
}

impl RawSession {
    /// Opens a session whose first message is `first`.
    pub async fn open(endpoint: &str, first: Kind) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
            .connect()
            .await?;
        Self::open_on(channel, first).await
    }

    /// Opens a session on `channel` (TLS, say) whose first message is
    /// `first`.
    pub async fn open_on(channel: tonic::transport::Channel, first: Kind) -> anyhow::Result<Self> {
        let mut client = GateServiceClient::new(channel);
        let (tx, rx) = mpsc::channel(16);
        tx.send(v1::ClientMessage { kind: Some(first) }).await?;
        let inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
        Ok(RawSession { tx, inbound })
    }

    /// Sends one message.
    pub async fn send(&self, kind: Kind) -> anyhow::Result<()> {
        self.tx.send(v1::ClientMessage { kind: Some(kind) }).await?;
        Ok(())
    }

    /// Reads frames until the stream ends with a status.
    pub async fn status(&mut self) -> anyhow::Result<Status> {
        let read = async {
            loop {
                match self.inbound.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => anyhow::bail!("stream ended without a status"),
                    Err(status) => return Ok(status),
                }
            }
        };
        tokio::time::timeout(LIMIT, read).await?
    }

    /// The next snapshot frame.
    pub async fn snapshot(&mut self) -> anyhow::Result<v1::PlanSnapshot> {
        let read = async {
            loop {
                if let Some(v1::server_message::Kind::Snapshot(s)) =
                    self.inbound.message().await?.and_then(|m| m.kind)
                {
                    return Ok(s);
                }
            }
        };
        tokio::time::timeout(LIMIT, read).await?
    }
}

/// A hello registering `gates`, holding nothing.
pub fn hello(gates: Vec<v1::GateIdentity>) -> Kind {
    Kind::Hello(v1::Hello {
        client_name: "raw".into(),
        gates,
        held: vec![],
    })
}
