//! TLS of a client's connections to coordinators: the CA that signed the
//! coordinators' certificates and, for mutual TLS, the client's own
//! certificate and key. Applied to `https://` endpoints only; the files are
//! read whenever a connection is configured, so a client started after a
//! rotation uses the new ones. Beside them, a token file (a projected
//! Kubernetes ServiceAccount token): sent as a bearer token with every
//! call, read again for each, so a rotated token is used at once.

use std::path::PathBuf;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Environment variable naming the CA file ([`ClientTls::from_env`]).
pub const CA_ENV: &str = "CUTOVER_TLS_CA";
/// Environment variable naming the client certificate file.
pub const CERT_ENV: &str = "CUTOVER_TLS_CERT";
/// Environment variable naming the client key file.
pub const KEY_ENV: &str = "CUTOVER_TLS_KEY";
/// Environment variable naming the bearer token file.
pub const TOKEN_ENV: &str = "CUTOVER_TOKEN_FILE";

/// TLS settings of a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM CA certificates the coordinator's certificate must chain to
    /// (the system's roots when absent).
    pub ca: Option<PathBuf>,
    /// PEM certificate and key presented to the coordinator (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Name to verify the coordinator's certificate against, when it is
    /// not the endpoint's host.
    pub domain: Option<String>,
    /// A file holding a bearer token (a projected ServiceAccount token with
    /// audience `cutover`), sent with every call.
    pub token_file: Option<PathBuf>,
}

impl ClientTls {
    /// From `CUTOVER_TLS_CA`, `CUTOVER_TLS_CERT` and `CUTOVER_TLS_KEY` (the
    /// certificate only with its key), and `CUTOVER_TOKEN_FILE`.
    pub fn from_env() -> Self {
        let path = |name| std::env::var_os(name).map(PathBuf::from);
        ClientTls {
            ca: path(CA_ENV),
            identity: path(CERT_ENV).zip(path(KEY_ENV)),
            domain: None,
            token_file: path(TOKEN_ENV),
        }
    }

    /// What adds the bearer token to each call on `endpoint`: nothing on a
    /// plaintext (`http://`) endpoint, where the token would travel in the
    /// clear.
    pub fn bearer(&self, endpoint: &Endpoint) -> BearerToken {
        let https = endpoint.uri().scheme_str() == Some("https");
        BearerToken {
            file: self.token_file.clone().filter(|_| https),
        }
    }

    /// `endpoint` with these settings if it is `https://`; unchanged
    /// otherwise. Errors name the file that cannot be used.
    pub fn apply(&self, endpoint: Endpoint) -> Result<Endpoint, String> {
        if endpoint.uri().scheme_str() != Some("https") {
            return Ok(endpoint);
        }
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
        };
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => config.with_enabled_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        endpoint.tls_config(config).map_err(|e| e.to_string())
    }
}

/// Adds `authorization: Bearer <token>` to every call, the token read from
/// its file each time (nothing without a file, or on a plaintext endpoint).
/// A file that cannot be read fails the call with UNAUTHENTICATED naming
/// it.
#[derive(Clone, Debug, Default)]
pub struct BearerToken {
    file: Option<PathBuf>,
}

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(file) = &self.file else {
            return Ok(request);
        };
        let token = std::fs::read_to_string(file).map_err(|e| {
            tonic::Status::unauthenticated(format!(
                "reading the token file {}: {e}",
                file.display()
            ))
        })?;
        let mut value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
            format!("Bearer {}", token.trim()).parse().map_err(|_| {
                tonic::Status::unauthenticated(format!(
                    "the token in {} is not a header value",
                    file.display()
                ))
            })?;
        value.set_sensitive(true);
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}
