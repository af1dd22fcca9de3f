//! Errors of the gate client.

use cutover_core::CoreError;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a valid URI.
    #[error("invalid coordinator endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The gate identity is malformed.
    #[error(transparent)]
    InvalidGate(#[from] CoreError),
    /// The same gate is already registered in this client.
    #[error("gate {0} is already registered in this client")]
    DuplicateGate(String),
    /// The client was shut down.
    #[error("the client is shut down")]
    Closed,
    /// The pool's runtime could not start.
    #[error("cannot start the gate runtime: {0}")]
    Runtime(std::io::Error),
    /// A pooled client was used without acquiring it.
    #[error("no client for {0} (acquire the endpoint first)")]
    NotAcquired(String),
}
