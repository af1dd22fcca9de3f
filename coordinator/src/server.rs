//! Serving a coordinator: gate and control services, gRPC health and
//! reflection on one port, graceful shutdown.

use std::future::Future;

use cutover_proto::v1::control_service_server::ControlServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tracing::info;

use crate::broken::Broken;
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
    let initially = if *coordinator.ready().borrow() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for service in SERVICES {
        health.set_service_status(service, initially).await;
    }
    tokio::spawn(report_readiness(coordinator.clone(), health.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cutover_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(ServeError::Reflection)?;
    tokio::spawn(report_broken_pipelines(coordinator.clone(), health.clone()));
    let max = coordinator.config().max_message_bytes;
    let control = ControlServiceServer::new(ControlApi::new(coordinator.clone()))
        .max_decoding_message_size(max);
    let address = listener.local_addr().ok();
    info!(?address, store = %coordinator.store_description(), "serving");
    let stopping = coordinator.clone();
    let shutdown = async move {
        shutdown.await;
        info!("shutting down");
        stopping.set_ready(false);
        for service in SERVICES {
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

/// The coordinator's services: SERVING while it is ready (its store
/// answered), NOT_SERVING while it waits for its store or shuts down.
const SERVICES: [&str; 3] = ["", "cutover.v1.GateService", "cutover.v1.ControlService"];

async fn report_readiness(coordinator: Coordinator, health: tonic_health::server::HealthReporter) {
    let mut ready = coordinator.ready();
    loop {
        let status = if *ready.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for service in SERVICES {
            health.set_service_status(service, status).await;
        }
        tokio::select! {
            changed = ready.changed() => if changed.is_err() { return },
            _ = coordinator.stopped() => return,
        }
    }
}

/// The health service name of pipeline `name`: NOT_SERVING while its stored
/// state cannot be read.
pub fn pipeline_health_service(name: &str) -> String {
    format!("cutover.pipeline/{name}")
}

/// Keeps a health entry per broken pipeline (NOT_SERVING), and SERVING once
/// it is readable again; the coordinator as a whole stays SERVING.
async fn report_broken_pipelines(
    coordinator: Coordinator,
    health: tonic_health::server::HealthReporter,
) {
    let mut broken = coordinator.broken().subscribe();
    let mut reported: std::collections::BTreeMap<_, Broken> = Default::default();
    loop {
        let now = broken.borrow_and_update().clone();
        for name in reported.keys().filter(|n| !now.contains_key(*n)) {
            health
                .set_service_status(
                    pipeline_health_service(name.as_str()),
                    ServingStatus::Serving,
                )
                .await;
        }
        for name in now.keys() {
            health
                .set_service_status(
                    pipeline_health_service(name.as_str()),
                    ServingStatus::NotServing,
                )
                .await;
        }
        reported = now;
        tokio::select! {
            changed = broken.changed() => if changed.is_err() { return },
            _ = coordinator.stopped() => return,
        }
    }
}
