//! Serving a coordinator: gate and control services, gRPC health and
//! reflection on one port, in plaintext or over TLS (see [`crate::tls`]),
//! graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cutover_proto::v1::control_service_server::ControlServiceServer;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tracing::{debug, info, warn};

use crate::first_bytes::FirstBytesDeadline;
use crate::tls::ServerTls;

use crate::admission::Admission;
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
    serve_on(coordinator, listener, None, shutdown).await
}

/// Like [`serve`], over TLS: every connection completes its handshake
/// (within the configured handshake timeout, else it is closed) before
/// gRPC sees it;
/// the certificate and client CA are those `tls` holds at each handshake.
pub async fn serve_tls(
    coordinator: Coordinator,
    listener: TcpListener,
    tls: Arc<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_on(coordinator, listener, Some(tls), shutdown).await
}

async fn serve_on(
    coordinator: Coordinator,
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
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
    let admission = Admission::new(coordinator.config().caller_limits);
    let control =
        ControlServiceServer::new(ControlApi::new(coordinator.clone(), admission.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
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
    let config = coordinator.config();
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .max_concurrent_streams(Some(config.max_concurrent_streams))
        .add_service(GateServer::new(coordinator.clone(), admission))
        .add_service(control)
        .add_service(health_service)
        .add_service(reflection_for_viewers(
            config.authoriser.clone(),
            config.tokens.clone(),
            reflection,
        ));
    match tls {
        None => router
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await
            .map_err(ServeError::Transport),
        Some(tls) => {
            let reloading = tls.watch();
            let served = router
                .serve_with_incoming_shutdown(
                    tls_incoming(listener, tls, config.handshake_timeout),
                    shutdown,
                )
                .await
                .map_err(ServeError::Transport);
            reloading.abort();
            served
        }
    }
}

/// Reflection behind the policy, if there is one: a caller needs a viewer
/// grant on some pipeline.
/// (A bearer token counts here if a known issuer signed it or it was
/// accepted before: the check cannot wait for a TokenReview.)
fn reflection_for_viewers<S>(
    authoriser: Option<Arc<crate::auth::Authoriser>>,
    tokens: Option<Arc<crate::auth::token::TokenAuth>>,
    reflection: S,
) -> InterceptedService<S, impl tonic::service::Interceptor + Clone> {
    InterceptedService::new(reflection, move |request: tonic::Request<()>| {
        if let Some(authoriser) = &authoriser {
            let identity = crate::auth::identify_offline(tokens.as_deref(), &request)?;
            authoriser.check_viewer(identity.as_deref())?;
        }
        Ok(request)
    })
}

/// Connections that finished their TLS handshake. Each handshake runs in a
/// task of its own, so a slow or silent client holds up nobody; a client
/// that finishes it and then sends nothing is dropped after as long again.
fn tls_incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    handshake_timeout: Duration,
) -> impl futures::Stream<Item = Result<FirstBytesDeadline<TlsStream<TcpStream>>, std::io::Error>> {
    let (ready, incoming) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let acceptor = TlsAcceptor::from(tls.config());
        loop {
            // The server stopped taking connections: release the port.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = ready.closed() => return,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // Out of descriptors and the like: wait, do not spin.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, ready) = (acceptor.clone(), ready.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        // Then it must start HTTP/2 within as long again.
                        let stream = FirstBytesDeadline::new(stream, handshake_timeout);
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => debug!(%error, "TLS handshake failed"),
                    Err(_) => debug!("TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(incoming)
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
