//! `cutover serve` whose store does not answer at start: it serves at once,
//! reports NOT_SERVING, refuses requests with UNAVAILABLE, and retries until
//! the store answers — then serves the pipelines stored there. Its flags
//! refuse values outside the protocol's bounds with the bound named.

use cutover_proto::v1;
use cutover_proto::v1::control_service_client::ControlServiceClient;
use cutover_tests::etcd::{EtcdServer, free_port};
use cutover_tests::process::{CoordinatorProcess, cutover_binary};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_an_etcd_that_is_not_there_yet() -> anyhow::Result<()> {
    let port = free_port()?;
    let store = format!("etcd:http://127.0.0.1:{port}");
    let mut coordinator = CoordinatorProcess::start_not_serving(&store, &[]).await?;
    let mut control = ControlServiceClient::connect(coordinator.endpoint()).await?;
    let refused = control
        .create_pipeline(v1::CreatePipelineRequest {
            pipeline: "orders".into(),
            owner: v1::Colour::Green as i32,
            horizon_window: 0,
        })
        .await
        .expect_err("no store yet");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("etcd"), "{}", refused.message());

    let _etcd = EtcdServer::start_on(port).await?;
    coordinator.wait_serving().await?;
    let created = control
        .create_pipeline(v1::CreatePipelineRequest {
            pipeline: "orders".into(),
            owner: v1::Colour::Green as i32,
            horizon_window: 0,
        })
        .await?
        .into_inner();
    assert_eq!(created.pipeline, "orders");
    Ok(())
}

#[test]
fn serve_flags_out_of_bounds_are_refused_naming_the_bound() -> anyhow::Result<()> {
    let cases: [(&[&str], &str); 5] = [
        (&["--horizon-window", "0s"], "2^40"),
        (&["--horizon-window", "10000years"], "2^40"),
        (&["--horizon-window", "-5s"], "negative"),
        (&["--max-message-bytes", "0"], "65536"),
        (&["--max-message-bytes", "99999999999"], "268435456"),
    ];
    for (flags, bound) in cases {
        let output = std::process::Command::new(cutover_binary()?)
            .args(["serve", "--store", "memory", "--metrics-listen", "off"])
            .args(flags)
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} was accepted");
        assert!(stderr.contains(bound), "{flags:?}: {stderr}");
    }
    Ok(())
}
