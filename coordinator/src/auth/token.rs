//! Callers identified by a Kubernetes ServiceAccount token (a bearer token
//! in the `authorization` metadata, audience `cutover` by default): checked
//! offline against the signing keys of the issuers named in a file (a gate
//! in another cluster: the local API server does not know that cluster's
//! tokens), else by a TokenReview against the API server of the cluster the
//! coordinator runs in. The identity is the token's subject,
//! `system:serviceaccount:NAMESPACE:NAME`, for a token of this cluster, and
//! `system:serviceaccount:NAMESPACE:NAME@ISSUER` for one checked offline:
//! the same account name in another cluster is another caller. A subject
//! that is not a ServiceAccount's is refused, so a token never passes for a
//! certificate identity.
//!
//! Accepted tokens are remembered until they expire, and at most
//! [`REVIEW_CACHE`] for a reviewed one, so a busy caller costs one review a
//! minute. Only asymmetric signatures are accepted offline (RS*, PS*, ES*),
//! each with keys of its own kind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use serde::Deserialize;
use tonic::Status;

/// How long a token a TokenReview accepted is trusted without another.
pub const REVIEW_CACHE: Duration = Duration::from_secs(60);

/// Tokens remembered at most (expired ones are forgotten first, then all).
const CACHE_SIZE: usize = 10_000;

/// Longest a token checked offline is remembered, whatever its expiry.
const OFFLINE_CACHE: Duration = Duration::from_secs(600);

/// How long a refused token is refused without asking again.
const REFUSAL_CACHE: Duration = Duration::from_secs(10);

/// What every ServiceAccount token's subject starts with.
const SERVICE_ACCOUNT: &str = "system:serviceaccount:";

/// Why token verification cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The issuers file or a key set it names cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The issuers file or a key set does not parse, or holds no usable key.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The issuers file:
///
/// ```yaml
/// issuers:
///   - issuer: https://oidc.cluster-b.example   # the tokens' `iss`
///     jwks_file: cluster-b.jwks.json            # its key set, relative to this file
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuersFile {
    issuers: Vec<IssuerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerEntry {
    issuer: String,
    jwks_file: PathBuf,
}

/// One issuer's signing keys.
pub struct Issuer {
    issuer: String,
    keys: Vec<IssuerKey>,
}

struct IssuerKey {
    id: Option<String>,
    key: DecodingKey,
    /// Algorithms this key may verify.
    algorithms: &'static [Algorithm],
}

const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const EC_ALGORITHMS: &[Algorithm] = &[Algorithm::ES256, Algorithm::ES384];

impl Issuer {
    /// `issuer` with the keys of the JWKS document `jwks` (JSON).
    pub fn from_jwks(issuer: &str, jwks: &str) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("not a JWKS: {e}"))?;
        let keys: Vec<IssuerKey> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let algorithms = match jwk.algorithm {
                    AlgorithmParameters::RSA(_) => RSA_ALGORITHMS,
                    AlgorithmParameters::EllipticCurve(_) => EC_ALGORITHMS,
                    _ => return None,
                };
                Some(IssuerKey {
                    id: jwk.common.key_id.clone(),
                    key: DecodingKey::from_jwk(jwk).ok()?,
                    algorithms,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err("no RSA or EC signing key".into());
        }
        Ok(Issuer {
            issuer: issuer.to_string(),
            keys,
        })
    }
}

/// Loads the issuers file at `path`.
pub fn load_issuers(path: &Path) -> Result<Vec<Issuer>, TokenError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let invalid = |path: &Path, reason: String| TokenError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let file: IssuersFile =
        serde_yaml::from_str(&read(path)?).map_err(|e| invalid(path, e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    file.issuers
        .iter()
        .map(|entry| {
            let jwks_path = base.join(&entry.jwks_file);
            Issuer::from_jwks(&entry.issuer, &read(&jwks_path)?)
                .map_err(|reason| invalid(&jwks_path, reason))
        })
        .collect()
}

/// Verifies bearer tokens.
pub struct TokenAuth {
    audience: String,
    issuers: Vec<Issuer>,
    review: Option<kube::Client>,
    accepted: Mutex<HashMap<String, (String, Instant)>>,
    refused: Mutex<HashMap<String, (String, Instant)>>,
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("audience", &self.audience)
            .field("issuers", &self.issuers.len())
            .field("review", &self.review.is_some())
            .finish()
    }
}

impl TokenAuth {
    /// Tokens for `audience`, checked against `issuers` offline and, for
    /// the others, by TokenReview through `review`.
    pub fn new(audience: String, issuers: Vec<Issuer>, review: Option<kube::Client>) -> Self {
        TokenAuth {
            audience,
            issuers,
            review,
            accepted: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// The identity `token` proves, or UNAUTHENTICATED saying why not.
    pub async fn identify(&self, token: &str) -> Result<String, Status> {
        if let Some(known) = self.remembered(token) {
            return Ok(known);
        }
        if let Some(reason) = lookup(&self.refused, token) {
            return Err(rejected(&reason));
        }
        let verdict = match (self.offline(token), &self.review) {
            (Some(Ok(identity)), _) => Ok(identity),
            // A known issuer signed it and a claim is wrong.
            (Some(Err(reason)), _) => Err(reason),
            (None, Some(client)) => self.reviewed(client, token).await?,
            (None, None) => Err("no issuer of this coordinator signed it".to_string()),
        };
        verdict.map_err(|reason| {
            store(&self.refused, token, &reason, REFUSAL_CACHE);
            rejected(&reason)
        })
    }

    /// Like [`TokenAuth::identify`] without asking the API server: tokens
    /// accepted before, or signed by a known issuer.
    pub fn identify_offline(&self, token: &str) -> Result<String, Status> {
        if let Some(known) = self.remembered(token) {
            return Ok(known);
        }
        match self.offline(token) {
            Some(Ok(identity)) => Ok(identity),
            Some(Err(reason)) => Err(rejected(&reason)),
            None => Err(rejected("no issuer of this coordinator signed it")),
        }
    }

    fn remembered(&self, token: &str) -> Option<String> {
        lookup(&self.accepted, token)
    }

    fn remember(&self, token: &str, identity: &str, for_: Duration) {
        store(&self.accepted, token, identity, for_);
    }

    /// Checked against the issuers' keys: `None` when no issuer's key
    /// verifies the signature (the token is someone else's to judge).
    fn offline(&self, token: &str) -> Option<Result<String, String>> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let mut verdict = None;
        for issuer in &self.issuers {
            let keys = issuer.keys.iter().filter(|k| {
                k.algorithms.contains(&header.alg)
                    && (header.kid.is_none() || k.id.is_none() || k.id == header.kid)
            });
            for key in keys {
                let mut validation = Validation::new(header.alg);
                validation.validate_nbf = true;
                validation.set_audience(&[&self.audience]);
                validation.set_issuer(&[&issuer.issuer]);
                validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
                match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                    Ok(data) if !data.claims.sub.starts_with(SERVICE_ACCOUNT) => {
                        return Some(Err("its subject is not a ServiceAccount".into()));
                    }
                    Ok(data) => {
                        let identity = format!("{}@{}", data.claims.sub, issuer.issuer);
                        let left = Duration::from_secs(data.claims.exp.saturating_sub(unix_now()));
                        self.remember(token, &identity, left.min(OFFLINE_CACHE));
                        return Some(Ok(identity));
                    }
                    // The signature checked out and a claim did not: say which.
                    Err(e)
                        if !matches!(
                            e.kind(),
                            jsonwebtoken::errors::ErrorKind::InvalidSignature
                        ) =>
                    {
                        verdict = Some(Err(format!("{} ({})", describe(&e), issuer.issuer)));
                    }
                    Err(_) => {}
                }
            }
        }
        verdict
    }

    /// The API server's verdict: `Err(Status)` when it cannot be asked,
    /// `Ok(Err(reason))` when it refuses the token.
    async fn reviewed(
        &self,
        client: &kube::Client,
        token: &str,
    ) -> Result<Result<String, String>, Status> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..TokenReview::default()
        };
        let api: kube::Api<TokenReview> = kube::Api::all(client.clone());
        let answer = api
            .create(&kube::api::PostParams::default(), &review)
            .await
            .map_err(|e| Status::unavailable(format!("cannot review the bearer token: {e}")))?;
        let status = answer.status.unwrap_or_default();
        let username = status.user.and_then(|u| u.username);
        // An answer without audiences means the API server's own: not ours.
        let for_us = status
            .audiences
            .as_ref()
            .is_some_and(|a| a.contains(&self.audience));
        Ok(match (status.authenticated, username) {
            (Some(true), Some(identity)) if for_us && identity.starts_with(SERVICE_ACCOUNT) => {
                self.remember(token, &identity, REVIEW_CACHE);
                Ok(identity)
            }
            (Some(true), Some(_)) if for_us => Err("its subject is not a ServiceAccount".into()),
            _ => Err(format!(
                "the API server did not accept it for audience {}: {}",
                self.audience,
                status.error.unwrap_or_else(|| "not authenticated".into())
            )),
        })
    }
}

/// What `cache` holds for `token`, if it has not expired.
fn lookup(cache: &Mutex<HashMap<String, (String, Instant)>>, token: &str) -> Option<String> {
    let cache = cache.lock().ok()?;
    let (value, until) = cache.get(token)?;
    (Instant::now() < *until).then(|| value.clone())
}

/// Keeps `value` for `token` for `for_`; a full cache forgets the expired
/// entries, and everything if that is not enough.
fn store(
    cache: &Mutex<HashMap<String, (String, Instant)>>,
    token: &str,
    value: &str,
    for_: Duration,
) {
    let Ok(mut cache) = cache.lock() else {
        return;
    };
    let now = Instant::now();
    if cache.len() >= CACHE_SIZE {
        cache.retain(|_, (_, until)| *until > now);
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
    }
    if let Some(until) = now.checked_add(for_) {
        cache.insert(token.to_string(), (value.to_string(), until));
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "expired".into(),
        ErrorKind::InvalidAudience => "issued for another audience".into(),
        ErrorKind::InvalidIssuer => "of another issuer".into(),
        ErrorKind::ImmatureSignature => "not valid yet".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("no `{claim}` claim"),
        other => format!("{other:?}"),
    }
}

fn rejected(reason: &str) -> Status {
    Status::unauthenticated(format!("bearer token rejected: {reason}"))
}

/// The bearer token of a request's `authorization` metadata, if any.
pub fn bearer<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}
