//! Clients that try to exhaust a coordinator: connections that stay idle,
//! never finish their TLS handshake or finish it and then say nothing, gate
//! sessions whose answers are never read, and oversized messages. Shared by `cutover bench
//! exhaustion` and the bounded exhaustion tests.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use cutover_client::ClientTls;
use cutover_proto::v1;
use cutover_proto::v1::gate_service_client::GateServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// The first bytes of a TLS ClientHello record (handshake, TLS 1.0 record
/// version, 512 bytes announced) and nothing more: a handshake that starts
/// and never finishes.
const PARTIAL_CLIENT_HELLO: [u8; 9] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];

/// `count` TCP connections to `address` that send nothing.
pub async fn idle_connections(address: SocketAddr, count: usize) -> anyhow::Result<Vec<TcpStream>> {
    let mut connections = Vec::with_capacity(count);
    for i in 0..count {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("opening idle connection {i} of {count}"))?;
        connections.push(stream);
    }
    Ok(connections)
}

/// `count` TCP connections to `address` that start a TLS handshake and stop.
pub async fn unfinished_handshakes(
    address: SocketAddr,
    count: usize,
) -> anyhow::Result<Vec<TcpStream>> {
    let mut connections = idle_connections(address, count).await?;
    for stream in &mut connections {
        stream.write_all(&PARTIAL_CLIENT_HELLO).await?;
    }
    Ok(connections)
}

/// `count` connections to `address` that complete a TLS handshake as the
/// client `tls` describes (CA and client certificate) and then send nothing:
/// no HTTP/2 preface.
pub async fn silent_after_handshake(
    address: SocketAddr,
    tls: &ClientTls,
    count: usize,
) -> anyhow::Result<Vec<tokio_rustls::client::TlsStream<TcpStream>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &tls.ca {
        for cert in CertificateDer::pem_file_iter(ca)? {
            roots.add(cert?)?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match &tls.identity {
        Some((cert, key)) => builder.with_client_auth_cert(
            CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?,
            PrivateKeyDer::from_pem_file(key)?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = ServerName::try_from(address.ip().to_string())?;
    let mut connections = Vec::with_capacity(count);
    for tcp in idle_connections(address, count).await? {
        connections.push(connector.connect(name.clone(), tcp).await?);
    }
    Ok(connections)
}

/// How many of `connections` the server closed within `limit` (their read
/// ends, or fails with a reset).
pub async fn closed_by_server<S>(connections: Vec<S>, limit: Duration) -> usize
where
    S: tokio::io::AsyncRead + Unpin,
{
    let waits = connections.into_iter().map(|mut stream| async move {
        let mut buffer = [0u8; 1024];
        let ended = async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        };
        tokio::time::timeout(limit, ended).await.unwrap_or(false)
    });
    futures::future::join_all(waits)
        .await
        .into_iter()
        .filter(|&closed| closed)
        .count()
}

/// A channel to `endpoint` (`https://` with `tls`).
pub async fn channel(endpoint: &str, tls: &ClientTls) -> anyhow::Result<Channel> {
    let configured = tls
        .apply(Endpoint::from_shared(endpoint.to_string())?)
        .map_err(anyhow::Error::msg)?;
    Ok(configured.connect().await?)
}

/// Gate sessions whose answers are never read: each says Hello with one
/// GREEN gate of `pipeline` and keeps its stream open.
pub struct UnreadSessions {
    _held: Vec<(
        mpsc::Sender<v1::ClientMessage>,
        tonic::Streaming<v1::ServerMessage>,
    )>,
}

impl UnreadSessions {
    /// Opens `count` sessions, `per_connection` on each connection.
    pub async fn open(
        endpoint: &str,
        tls: &ClientTls,
        pipeline: &str,
        count: u32,
        per_connection: u32,
    ) -> anyhow::Result<Self> {
        let mut held = Vec::with_capacity(count as usize);
        let mut client = None;
        for subtask in 0..count {
            if subtask % per_connection.max(1) == 0 {
                client = Some(GateServiceClient::new(channel(endpoint, tls).await?));
            }
            let client = client.as_mut().context("a connection")?;
            let (tx, rx) = mpsc::channel(1);
            tx.send(hello(pipeline, subtask, count, String::new()))
                .await?;
            let inbound = client
                .session(ReceiverStream::new(rx))
                .await
                .with_context(|| format!("opening unread session {subtask}"))?
                .into_inner();
            held.push((tx, inbound));
        }
        Ok(UnreadSessions { _held: held })
    }
}

/// A Hello registering GREEN gate `subtask` of `parallelism` of `pipeline`,
/// from a client whose name is `client_name`.
fn hello(pipeline: &str, subtask: u32, parallelism: u32, client_name: String) -> v1::ClientMessage {
    v1::ClientMessage {
        kind: Some(v1::client_message::Kind::Hello(v1::Hello {
            client_name,
            gates: vec![v1::GateIdentity {
                pipeline: pipeline.to_string(),
                colour: v1::Colour::Green as i32,
                job_id: "unread".into(),
                gate_uid: "gate".into(),
                subtask_index: subtask,
                parallelism,
                attempt: 0,
            }],
            held: Vec::new(),
        })),
    }
}

/// Sends one gate message of about `bytes` bytes (a Hello whose client name
/// is that long) and returns the status the session ends with.
pub async fn oversized_hello(
    endpoint: &str,
    tls: &ClientTls,
    bytes: usize,
) -> anyhow::Result<tonic::Status> {
    let mut client =
        GateServiceClient::new(channel(endpoint, tls).await?).max_encoding_message_size(usize::MAX);
    let (tx, rx) = mpsc::channel(1);
    tx.send(hello("oversized", 0, 1, "x".repeat(bytes))).await?;
    let answer = client.session(ReceiverStream::new(rx)).await;
    let status = match answer {
        Err(status) => status,
        Ok(response) => {
            let mut inbound = response.into_inner();
            loop {
                match inbound.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break tonic::Status::ok("the session ended without a status"),
                    Err(status) => break status,
                }
            }
        }
    };
    drop(tx);
    Ok(status)
}
