//! TLS on the gRPC port, with files reloaded while serving.
//!
//! The server certificate and key, and (for mutual TLS) the CA that client
//! certificates must chain to, are read from PEM files. A task re-reads them
//! every [`RELOAD_INTERVAL`]; when their contents changed and still make a
//! valid configuration, new handshakes use them at once (the certificate
//! through a resolver of our own, the client CA through a verifier that
//! delegates to the current one). Established connections, and so running
//! gate sessions, are not touched. Files that do not load are logged and
//! the previous ones stay in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

/// How often the files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Where the TLS files are.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// PEM certificate chain of the server (leaf first).
    pub cert: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM CA certificates a client certificate must chain to; without it
    /// clients are not asked for certificates.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no PEM object of the expected kind, or a malformed one.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the certificate, key or CA.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA does not make a verifier.
    #[error("client CA {path}: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The server's TLS configuration, kept current with its files.
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    state: Arc<Current>,
}

/// What the files held when they last loaded.
struct Current {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    key: ArcSwap<CertifiedKey>,
    verifier: ArcSwap<Arc<dyn ClientCertVerifier>>,
    contents: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Whether a client must present a certificate (else a token may do).
    certificate_required: bool,
}

impl ServerTls {
    /// Loads `files` (every one must load) and starts watching them.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        Self::load_with(files, true)
    }

    /// Like [`ServerTls::load`], with the client certificate optional: a
    /// client that presents one must chain to the client CA, a client
    /// without one may connect and identify with a bearer token.
    pub fn load_accepting_tokens(files: TlsFiles) -> Result<Self, TlsError> {
        Self::load_with(files, false)
    }

    fn load_with(files: TlsFiles, certificate_required: bool) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = read_all(&files)?;
        let key = certified_key(&files, &contents, &provider)?;
        let verifier = match &files.client_ca {
            Some(_) => Some(client_verifier(&files, &contents, &provider)?),
            None => None,
        };
        let mutual = verifier.is_some();
        let state = Arc::new(Current {
            provider: provider.clone(),
            key: ArcSwap::from_pointee(key),
            verifier: ArcSwap::from_pointee(
                verifier.unwrap_or_else(|| WebPkiClientVerifier::no_client_auth()),
            ),
            contents: std::sync::Mutex::new(contents),
            files,
            certificate_required,
        });
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?;
        let builder = if mutual {
            builder.with_client_cert_verifier(Arc::new(CurrentVerifier(state.clone())))
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(Arc::new(CurrentKey(state.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            state,
        })
    }

    /// The configuration new handshakes use.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.state.files.client_ca.is_some()
    }

    /// Re-reads the files; installs them if they changed and load. Returns
    /// whether anything new was installed.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let state = &self.state;
        let contents = read_all(&state.files)?;
        let unchanged = state
            .contents
            .lock()
            .map(|c| *c == contents)
            .unwrap_or(false);
        if unchanged {
            return Ok(false);
        }
        let key = certified_key(&state.files, &contents, &state.provider)?;
        let verifier = match &state.files.client_ca {
            Some(_) => Some(client_verifier(&state.files, &contents, &state.provider)?),
            None => None,
        };
        state.key.store(Arc::new(key));
        if let Some(verifier) = verifier {
            state.verifier.store(Arc::new(verifier));
        }
        if let Ok(mut current) = state.contents.lock() {
            *current = contents;
        }
        Ok(true)
    }

    /// Reloads every [`RELOAD_INTERVAL`] until the returned task is
    /// dropped or aborted.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        crate::reload::every(RELOAD_INTERVAL, "TLS files", move || tls.reload())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Certificate, key and (if any) client CA, in that order.
fn read_all(files: &TlsFiles) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut all = vec![read(&files.cert)?, read(&files.key)?];
    if let Some(ca) = &files.client_ca {
        all.push(read(ca)?);
    }
    Ok(all)
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

fn certified_key(
    files: &TlsFiles,
    contents: &[Vec<u8>],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = certificates(&files.cert, &contents[0])?;
    let key = PrivateKeyDer::from_pem_slice(&contents[1]).map_err(|e| TlsError::Pem {
        path: files.key.clone(),
        what: e.to_string(),
    })?;
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}

fn client_verifier(
    files: &TlsFiles,
    contents: &[Vec<u8>],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let path = files.client_ca.clone().unwrap_or_default();
    let mut roots = RootCertStore::empty();
    for cert in certificates(&path, &contents[2])? {
        roots.add(cert).map_err(|e| TlsError::ClientCa {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::ClientCa {
            path,
            reason: e.to_string(),
        })
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct CurrentKey(Arc<Current>);

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CurrentKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.key.load_full())
    }
}

/// Verifies client certificates against the current client CA.
#[derive(Debug)]
struct CurrentVerifier(Arc<Current>);

impl ClientCertVerifier for CurrentVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.0.certificate_required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints would have to outlive a reload; clients present their one
        // certificate either way.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .verifier
            .load()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verifier
            .load()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verifier
            .load()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.verifier.load().supported_verify_schemes()
    }
}
