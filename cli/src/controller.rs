//! `cutover controller`: the FlinkBlueGreenDeployment controller against
//! the cluster's API server (in-cluster configuration or kubeconfig).

use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use cutover_controller::edge::{ControllerConfig, ControllerMetrics, run};
use cutover_coordinator::metrics::serve_metrics;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::info;

/// Flags of `cutover controller`.
#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Namespace to watch; every namespace when absent (needs cluster-wide
    /// RBAC).
    #[arg(long, env = "CUTOVER_NAMESPACE")]
    namespace: Option<String>,
    /// Reconcile every resource at least this often.
    #[arg(long, default_value = "5m", value_parser = cutover_cli::flags::duration, allow_hyphen_values = true)]
    resync: Duration,
    /// Wait this long after a failed reconciliation.
    #[arg(long, default_value = "5s", value_parser = cutover_cli::flags::duration, allow_hyphen_values = true)]
    retry: Duration,
    /// Instance name on Events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
    /// Address of the Prometheus metrics endpoint (also the liveness
    /// probe's); `off` disables it.
    #[arg(long, default_value = "127.0.0.1:9701")]
    metrics_listen: String,
    /// How to reach `https://` coordinators.
    #[command(flatten)]
    tls: cutover_cli::tls_args::TlsArgs,
}

impl ControllerArgs {
    /// Runs until SIGINT or SIGTERM.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let client = kube::Client::try_default()
            .await
            .context("no Kubernetes configuration (in-cluster or kubeconfig)")?;
        let metrics = ControllerMetrics::default();
        if self.metrics_listen != "off" {
            let mut registry = Registry::default();
            metrics.register(&mut registry);
            let listener = TcpListener::bind(&self.metrics_listen)
                .await
                .with_context(|| format!("binding metrics address {}", self.metrics_listen))?;
            info!(address = %self.metrics_listen, "metrics endpoint");
            tokio::spawn(serve_metrics(listener, Arc::new(registry)));
        }
        let config = ControllerConfig {
            namespace: self.namespace,
            instance: self.instance,
            resync: self.resync,
            retry: self.retry,
            metrics,
            coordinator_tls: self.tls.client_tls(),
            ..ControllerConfig::default()
        };
        run(client, config, crate::serve::shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    }
}
