//! Test harness of cutover: coordinators on loopback (restartable on the
//! same store and port), control clients, gate identities, status waits, and
//! the seeded whole-protocol simulation, and hosts in network namespaces.

pub mod chromium;
pub mod conformance;
pub mod controller_world;
pub mod counting_alloc;
pub mod diagnostics;
pub mod etcd;
pub mod flink_operator;
pub mod kube_api;
pub mod manifests;
pub mod netns;
pub use cutover_cli::pki;
pub mod process;
pub mod raw_session;
pub mod simulation;
pub mod workload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cutover_client::ControlClient;
use cutover_coordinator::store::Store;
use cutover_coordinator::{Coordinator, CoordinatorConfig, Metrics, serve};
use cutover_core::{
    Colour, GateIdentity, HorizonPolicy, Key, PipelineName, PipelineStatus, ScheduleRequest,
};
use cutover_proto::v1::control_service_client::ControlServiceClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A coordinator serving on a loopback port.
pub struct TestCoordinator {
    /// Its address.
    pub address: SocketAddr,
    /// The coordinator (for metrics and direct inspection).
    pub coordinator: Coordinator,
    /// Its metrics.
    pub metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings used by the tests: a 1 s horizon window.
pub fn test_config() -> CoordinatorConfig {
    CoordinatorConfig {
        horizon: HorizonPolicy::with_window(1_000),
        ..CoordinatorConfig::default()
    }
}

impl TestCoordinator {
    /// Starts on a free port.
    pub async fn start(store: Arc<dyn Store>, config: CoordinatorConfig) -> anyhow::Result<Self> {
        Self::start_at("127.0.0.1:0".parse()?, store, config).await
    }

    /// Starts on `address` (to restart on the port of a stopped one).
    pub async fn start_at(
        address: SocketAddr,
        store: Arc<dyn Store>,
        config: CoordinatorConfig,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::default();
        let coordinator = Coordinator::new(store, config, metrics.clone());
        coordinator.load_all().await?;
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn({
            let coordinator = coordinator.clone();
            async move {
                serve(coordinator, listener, async {
                    let _ = stopped.await;
                })
                .await?;
                Ok(())
            }
        });
        Ok(TestCoordinator {
            address,
            coordinator,
            metrics,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// `http://address`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A control client.
    pub async fn control(&self) -> anyhow::Result<ControlClient> {
        Ok(ControlClient::connect(self.endpoint()).await?)
    }

    /// The generated control client, for requests the typed one cannot
    /// send (malformed ones).
    pub async fn raw_control(&self) -> anyhow::Result<ControlServiceClient<Channel>> {
        Ok(ControlServiceClient::connect(self.endpoint()).await?)
    }

    /// Shuts down gracefully and waits until the port is closed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await??;
        }
        Ok(())
    }
}

impl Drop for TestCoordinator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A gate identity in `pipeline` with uid `gate`.
pub fn identity(
    pipeline: &str,
    colour: Colour,
    subtask_index: u32,
    parallelism: u32,
) -> GateIdentity {
    GateIdentity {
        pipeline: PipelineName::new(pipeline).expect("valid pipeline name"),
        colour,
        job_id: format!("{colour}-job"),
        gate_uid: "gate".into(),
        subtask_index,
        parallelism,
        attempt: 0,
    }
}

/// `name` as a pipeline name (a test's own, always valid).
pub fn pipeline(name: &str) -> PipelineName {
    PipelineName::new(name).expect("a valid pipeline name")
}

/// Waits (on `WatchPipeline`, at most `limit`) for a status that satisfies
/// `predicate`, and returns it.
pub async fn wait_for_status(
    control: &mut ControlClient,
    name: &str,
    limit: Duration,
    predicate: impl Fn(&PipelineStatus) -> bool,
) -> anyhow::Result<PipelineStatus> {
    Ok(control.wait_for(&pipeline(name), limit, predicate).await?)
}

/// Schedules a transition; returns the status and the cutover key.
pub async fn schedule(
    control: &mut ControlClient,
    name: &str,
    request: ScheduleRequest,
) -> anyhow::Result<(PipelineStatus, i64)> {
    let status = control.schedule(&pipeline(name), request).await?;
    let at = status
        .transition
        .as_ref()
        .map(|t| t.at.0)
        .context("the status has no transition")?;
    Ok((status, at))
}

/// A schedule at `key`, auto-promoted or not.
pub fn schedule_at(target: Colour, key: i64, auto_promote: bool) -> ScheduleRequest {
    ScheduleRequest {
        auto_promote,
        ..ScheduleRequest::at(target, Key(key))
    }
}

/// The epoch of a status.
pub fn epoch_of(status: &PipelineStatus) -> u64 {
    status.plan.epoch.0
}

/// The horizon of a status.
pub fn horizon_of(status: &PipelineStatus) -> i64 {
    status.plan.horizon.0
}

/// A GREEN gate (the only gate of pipeline `orders`) whose plan has a
/// cutover to BLUE at the returned key with the horizon past it: below the
/// key it emits, from it on it drops, far ahead it holds.
pub async fn gate_past_a_cutover() -> anyhow::Result<(
    TestCoordinator,
    cutover_client::Client,
    cutover_client::Gate,
    i64,
)> {
    use cutover_client::{Client, ClientConfig, Key};
    use cutover_core::Epoch;
    let coordinator = TestCoordinator::start(
        Arc::new(cutover_coordinator::store::MemoryStore::new()),
        test_config(),
    )
    .await?;
    let client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let pipeline = PipelineName::new("orders")?;
    let mut green = client.gate(identity("orders", Colour::Green, 0, 1))?;
    green.observe_watermark(Key(10_000));
    let limit = Duration::from_secs(10);
    tokio::time::timeout(limit, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    let mut control = coordinator.control().await?;
    wait_for_status(&mut control, "orders", limit, |s| horizon_of(s) > 10_000).await?;
    let (_, at) = schedule(
        &mut control,
        "orders",
        ScheduleRequest::earliest(Colour::Blue),
    )
    .await?;
    green.observe_watermark(Key(at + 10));
    let passed =
        wait_for_status(&mut control, "orders", limit, |s| horizon_of(s) > at + 10).await?;
    let epoch = Epoch(epoch_of(&passed));
    tokio::time::timeout(limit, client.wait_for_epoch(&pipeline, epoch)).await?;
    Ok((coordinator, client, green, at))
}

/// A coordinator (memory store, `config`) serving TLS with `tls` on a free
/// loopback port until the returned sender is dropped: its port.
pub async fn serve_tls_on_free_port(
    config: CoordinatorConfig,
    tls: Arc<cutover_coordinator::tls::ServerTls>,
) -> anyhow::Result<(u16, oneshot::Sender<()>)> {
    let coordinator = Coordinator::new(
        Arc::new(cutover_coordinator::store::MemoryStore::new()),
        config,
        Metrics::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(cutover_coordinator::serve_tls(
        coordinator,
        listener,
        tls,
        async {
            let _ = stopped.await;
        },
    ));
    Ok((port, stop))
}
