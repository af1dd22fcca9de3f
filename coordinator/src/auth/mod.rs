//! Authentication and authorisation of callers: identities from client
//! certificates ([`identity`]) or ServiceAccount tokens ([`token`]), a
//! policy mapping them to roles
//! ([`policy`]), and the [`Authoriser`] the services ask, which re-reads
//! the policy file when it changes.
//!
//! Without a policy every caller may do everything (the coordinator's
//! behaviour on loopback and in plaintext); with one, every call needs an
//! identity and a grant: `UNAUTHENTICATED` without an identity,
//! `PERMISSION_DENIED` naming the identity and the missing grant otherwise,
//! and nothing changes. Health stays open; reflection needs a viewer grant
//! on some pipeline.

pub mod identity;
pub mod policy;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tonic::Status;

use policy::{Action, Policy, PolicyError, Refusal};

/// How often the policy file is checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The policy in force, kept current with its file.
pub struct Authoriser {
    path: PathBuf,
    policy: ArcSwap<Policy>,
    text: std::sync::Mutex<String>,
}

impl std::fmt::Debug for Authoriser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authoriser")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why the policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file cannot be read.
    #[error("reading the policy {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It holds no valid policy.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PolicyError,
    },
}

impl Authoriser {
    /// Loads the policy at `path`.
    pub fn load(path: PathBuf) -> Result<Self, AuthError> {
        let text = read(&path)?;
        let policy = parse(&path, &text)?;
        Ok(Authoriser {
            path,
            policy: ArcSwap::from_pointee(policy),
            text: std::sync::Mutex::new(text),
        })
    }

    /// Re-reads the file; installs the policy if it changed and is valid.
    /// Returns whether a new policy was installed.
    pub fn reload(&self) -> Result<bool, AuthError> {
        let text = read(&self.path)?;
        if self.text.lock().map(|t| *t == text).unwrap_or(false) {
            return Ok(false);
        }
        let policy = parse(&self.path, &text)?;
        self.policy.store(Arc::new(policy));
        if let Ok(mut current) = self.text.lock() {
            *current = text;
        }
        Ok(true)
    }

    /// Reloads every [`RELOAD_INTERVAL`] until the task is aborted.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let auth = self.clone();
        crate::reload::every(RELOAD_INTERVAL, "policy", move || auth.reload())
    }

    /// Whether `identity` may take `action` on `pipeline`, as a gRPC
    /// status when not.
    pub fn check(
        &self,
        identity: Option<&str>,
        action: Action,
        pipeline: &str,
    ) -> Result<(), Status> {
        self.policy
            .load()
            .check(identity, action, pipeline)
            .map_err(status_of)
    }

    /// Whether `identity` may view some pipeline (reflection's question),
    /// as a gRPC status when not.
    pub fn check_viewer(&self, identity: Option<&str>) -> Result<(), Status> {
        self.policy.load().check_viewer(identity).map_err(status_of)
    }
}

fn status_of(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Unauthenticated => Status::unauthenticated(refusal.to_string()),
        Refusal::Denied { .. } | Refusal::NoViewer { .. } => {
            Status::permission_denied(refusal.to_string())
        }
    }
}

/// Who is calling: the subject of its bearer token when tokens are
/// verified and the request carries one (a token that does not verify:
/// UNAUTHENTICATED), else its client certificate's identity, if any.
pub async fn identify<T>(
    tokens: Option<&token::TokenAuth>,
    request: &tonic::Request<T>,
) -> Result<Option<String>, Status> {
    match (tokens, token::bearer(request)) {
        (Some(tokens), Some(bearer)) => tokens.identify(bearer).await.map(Some),
        _ => Ok(identity::of_request(request)),
    }
}

/// Who calls, as every service asks before anything else: an address that
/// failed authentication too often is turned away first
/// (RESOURCE_EXHAUSTED); a token that does not verify, or no identity at
/// all under a policy, is UNAUTHENTICATED and counted against the address.
pub async fn admitted_identity<T>(
    config: &crate::CoordinatorConfig,
    admission: &crate::admission::Admission,
    request: &tonic::Request<T>,
) -> Result<Option<String>, Status> {
    let address = crate::admission::address_key(request.remote_addr());
    let now = std::time::Instant::now();
    admission.check_refusals(&address, now)?;
    identify(config.tokens.as_deref(), request)
        .await
        .and_then(|identity| match (&config.authoriser, identity) {
            (Some(_), None) => Err(Status::unauthenticated(
                Refusal::Unauthenticated.to_string(),
            )),
            (_, identity) => Ok(identity),
        })
        .inspect_err(|_| admission.count_refusal(&address, now))
}

/// Like [`identify`] without asking the API server (tokens accepted
/// before or signed by a known issuer): for checks that cannot wait.
pub fn identify_offline<T>(
    tokens: Option<&token::TokenAuth>,
    request: &tonic::Request<T>,
) -> Result<Option<String>, Status> {
    match (tokens, token::bearer(request)) {
        (Some(tokens), Some(bearer)) => tokens.identify_offline(bearer).map(Some),
        _ => Ok(identity::of_request(request)),
    }
}

fn read(path: &Path) -> Result<String, AuthError> {
    std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(path: &Path, text: &str) -> Result<Policy, AuthError> {
    Policy::parse(text).map_err(|source| AuthError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}
