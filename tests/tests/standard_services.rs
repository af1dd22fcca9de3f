//! gRPC health checking and server reflection answer on the coordinator's
//! port, so stock tools (grpc_health_probe, grpcurl) work.

use std::sync::Arc;

use cutover_coordinator::store::MemoryStore;
use cutover_tests::*;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn channel(coordinator: &TestCoordinator) -> anyhow::Result<tonic::transport::Channel> {
    Ok(
        tonic::transport::Channel::from_shared(coordinator.endpoint())?
            .connect()
            .await?,
    )
}

#[tokio::test]
async fn health_reports_serving_per_service() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut health = HealthClient::new(channel(&coordinator).await?);
    for service in ["", "cutover.v1.GateService", "cutover.v1.ControlService"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await;
    assert_eq!(
        unknown.expect_err("unknown service").code(),
        tonic::Code::NotFound
    );
    Ok(())
}

#[tokio::test]
async fn reflection_lists_the_cutover_services() -> anyhow::Result<()> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let mut reflection = ServerReflectionClient::new(channel(&coordinator).await?);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let response = responses.next().await.expect("a response")?;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        anyhow::bail!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "cutover.v1.GateService",
        "cutover.v1.ControlService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    Ok(())
}
