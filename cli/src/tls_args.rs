//! The flags every client command shares for `https://` coordinators: the
//! CA, the client certificate and key (mutual TLS), and a token file (a
//! projected ServiceAccount token), each also from its environment
//! variable.

use std::path::PathBuf;

use cutover_client::ClientTls;

/// How a command connects to `https://` coordinators.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM CA certificates the coordinators' certificates chain to
    /// (`https://` endpoints; the system's roots when absent).
    #[arg(long, env = "CUTOVER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate presented to the coordinators (mutual TLS;
    /// with --tls-key).
    #[arg(long, env = "CUTOVER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM key of --tls-cert.
    #[arg(long, env = "CUTOVER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// File holding a bearer token (a projected ServiceAccount token with
    /// audience `cutover`), sent with every call; read again for each.
    #[arg(long, env = "CUTOVER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl TlsArgs {
    /// The client settings these flags give.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls {
            ca: self.tls_ca.clone(),
            identity: self.tls_cert.clone().zip(self.tls_key.clone()),
            domain: None,
            token_file: self.token_file.clone(),
        }
    }
}
