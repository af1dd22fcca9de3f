//! `cutover controller`: the FlinkBlueGreenDeployment controller against
//! the cluster's API server (in-cluster configuration or kubeconfig).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cutover_controller::edge::{ControllerConfig, run};

/// Flags of `cutover controller`.
#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Namespace to watch; every namespace when absent (needs cluster-wide
    /// RBAC).
    #[arg(long, env = "CUTOVER_NAMESPACE")]
    namespace: Option<String>,
    /// Reconcile every resource at least this often.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    resync: Duration,
    /// Wait this long after a failed reconciliation.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    retry: Duration,
    /// Instance name on Events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
}

impl ControllerArgs {
    /// Runs until SIGINT or SIGTERM.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let client = kube::Client::try_default()
            .await
            .context("no Kubernetes configuration (in-cluster or kubeconfig)")?;
        let config = ControllerConfig {
            namespace: self.namespace,
            instance: self.instance,
            resync: self.resync,
            retry: self.retry,
            ..ControllerConfig::default()
        };
        run(client, config, crate::serve::shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    }
}
