//! The metrics port answers `GET /ready` with the coordinator's readiness
//! (the probe of a coordinator whose gRPC port speaks only TLS) and every
//! other path with the metrics.

use std::sync::Arc;

use cutover_coordinator::Metrics;
use cutover_coordinator::metrics::serve_metrics_and_readiness;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn get(address: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn ready_follows_the_coordinator_and_metrics_stay_served() -> anyhow::Result<()> {
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    metrics.sessions.set(3);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (ready, watched) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve_metrics_and_readiness(
        listener,
        Arc::new(registry),
        Some(watched),
    ));
    let waiting = get(address, "/ready").await?;
    assert!(waiting.starts_with("HTTP/1.1 503"), "{waiting}");
    ready.send(true)?;
    let serving = get(address, "/ready").await?;
    assert!(serving.starts_with("HTTP/1.1 200"), "{serving}");
    let exposition = get(address, "/metrics").await?;
    assert!(exposition.starts_with("HTTP/1.1 200"), "{exposition}");
    assert!(exposition.contains("cutover_sessions 3"), "{exposition}");
    server.abort();
    Ok(())
}
