//! The process-wide client: one coordinator session for every gate handle.

use std::sync::Arc;

use cutover_core::{GateIdentity, PipelineName, Plan};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::gate::Gate;
use crate::shared::Shared;

/// A connection to the coordinator shared by every gate of the process.
pub struct Client {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Client {
    /// Starts the session task (on the current tokio runtime). Returns at
    /// once; gates hold until the first plan arrives.
    pub fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let addresses = config.endpoints();
        if addresses.is_empty() {
            return Err(ClientError::InvalidEndpoint {
                endpoint: config.endpoint.clone(),
                reason: "no coordinator address".into(),
            });
        }
        for address in &addresses {
            crate::connection_report::check_address(address).map_err(|reason| {
                ClientError::InvalidEndpoint {
                    endpoint: address.clone(),
                    reason,
                }
            })?;
        }
        let endpoints = addresses
            .iter()
            .map(|address| {
                Ok(Endpoint::from_shared(address.clone())
                    .map_err(|e| ClientError::InvalidEndpoint {
                        endpoint: address.clone(),
                        reason: e.to_string(),
                    })?
                    .connect_timeout(config.connect_timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(config.keepalive)
                    .keep_alive_timeout(config.keepalive)
                    .keep_alive_while_idle(true))
                .and_then(|endpoint| {
                    config
                        .tls
                        .apply(endpoint)
                        .map_err(|reason| ClientError::InvalidEndpoint {
                            endpoint: address.clone(),
                            reason,
                        })
                })
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        let shared = Arc::new(Shared::new(config));
        let task = tokio::spawn(crate::session::run(shared.clone(), endpoints));
        Ok(Client {
            shared,
            task: Some(task),
        })
    }

    /// Registers a gate. Fails if the identity is malformed or already
    /// registered in this client.
    pub fn gate(&self, identity: GateIdentity) -> Result<Gate, ClientError> {
        let (slot, published) = self.shared.register(identity)?;
        Ok(Gate::new(self.shared.clone(), slot, published))
    }

    /// `true` while a session is open.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.shared.connected()
    }

    /// Whether the client ever connected, since when it is in its present
    /// state, and why attempts failed: for logs and error messages.
    pub fn connection_report(&self) -> crate::ConnectionReport {
        self.shared.connection_report()
    }

    /// Sessions opened so far (1 + reconnections).
    pub fn sessions_opened(&self) -> u64 {
        self.shared.sessions_opened()
    }

    /// The plan held for `pipeline`, if any.
    pub fn plan(&self, pipeline: &PipelineName) -> Option<Arc<Plan>> {
        self.shared.existing_slot(pipeline)?.plan.load_full()
    }

    /// Waits until the plan held for `pipeline` reaches `epoch` or later.
    pub async fn wait_for_epoch(&self, pipeline: &PipelineName, epoch: cutover_core::Epoch) {
        let mut installed = self.shared.slot(pipeline).installed.subscribe();
        let _ = installed.wait_for(|&e| e >= epoch).await;
    }

    /// Waits until the plan held for `pipeline` satisfies `accept`, and
    /// returns it.
    pub async fn wait_for_plan(
        &self,
        pipeline: &PipelineName,
        accept: impl Fn(&Plan) -> bool,
    ) -> Arc<Plan> {
        let slot = self.shared.slot(pipeline);
        let mut installed = slot.installed.subscribe();
        loop {
            installed.borrow_and_update();
            if let Some(plan) = slot.plan.load_full()
                && accept(&plan)
            {
                return plan;
            }
            if installed.changed().await.is_err() {
                // The client is gone; nothing will ever be installed.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sends a last progress report and closes the session.
    pub async fn shutdown(mut self) {
        self.shared.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.stop();
    }
}
