//! Why a reconciliation failed: [`EdgeError`].

use crate::child::ChildError;
use cutover_crds::ConfigurationError;

/// Why a reconciliation (or one of its actions) failed. The resource's
/// status shows it as `lastError`; the controller retries.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The coordinator address in `spec.configuration.coordinator` is not
    /// a URL tonic can connect to.
    #[error("coordinator address {endpoint:?}: {reason}")]
    CoordinatorAddress {
        /// The address.
        endpoint: String,
        /// Why it is refused.
        reason: String,
    },
    /// The coordinator refused or failed a control request.
    #[error("coordinator {endpoint}: {what}: {source}")]
    Coordinator {
        /// Its address.
        endpoint: String,
        /// The request.
        what: &'static str,
        /// The coordinator's answer.
        #[source]
        source: cutover_client::ControlError,
    },

    /// A child FlinkDeployment could not be built from the resource.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// A child object did not convert to or from JSON.
    #[error("child object: {0}")]
    Json(#[from] serde_json::Error),
    /// `spec.configuration` holds a value that is not valid.
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),
    /// The kubeconfig of a cluster a colour is placed in cannot be read
    /// from its Secret or does not make a client.
    #[error("cluster {cluster}: kubeconfig in Secret {secret}: {reason}")]
    Kubeconfig {
        /// The cluster, as `spec.placement` names it.
        cluster: String,
        /// `<namespace>/<name>` of the Secret.
        secret: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The resource lacks a namespace (it was not read from the API
    /// server).
    #[error("the resource has no namespace")]
    NoNamespace,
}
