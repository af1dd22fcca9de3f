//! Serving a coordinator: gate and control services, gRPC health and
//! reflection on one port, graceful shutdown.

use std::future::Future;

use cutover_proto::v1::control_service_server::ControlServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tracing::info;

use crate::control::ControlApi;
use crate::gate_server::GateServer;
use crate::registry::Coordinator;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The reflection service could not be built from the descriptors.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[source] tonic::transport::Error),
}

/// Serves `coordinator` on `listener` until `shutdown` resolves; then ends
/// every session with UNAVAILABLE (clients reconnect elsewhere), reports
/// NOT_SERVING on health, and returns once connections have closed.
pub async fn serve(
    coordinator: Coordinator,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for service in ["", "cutover.v1.GateService", "cutover.v1.ControlService"] {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cutover_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(ServeError::Reflection)?;
    let max = coordinator.config().max_message_bytes;
    let control = ControlServiceServer::new(ControlApi::new(coordinator.clone()))
        .max_decoding_message_size(max);
    let address = listener.local_addr().ok();
    info!(?address, store = %coordinator.store_description(), "serving");
    let stopping = coordinator.clone();
    let shutdown = async move {
        shutdown.await;
        info!("shutting down");
        for service in ["", "cutover.v1.GateService", "cutover.v1.ControlService"] {
            health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
        stopping.shutdown();
    };
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .add_service(GateServer::new(coordinator))
        .add_service(control)
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(ServeError::Transport)
}
