//! Kubernetes ServiceAccount tokens as identities, over TLS with a policy.
//! A token of this cluster is checked by a TokenReview against the (fake)
//! API server; a token of another cluster offline against its issuer's
//! keys. Refused: a token for another audience (either way), an expired
//! one, one signed by a key no issuer of the coordinator has, garbage, and a
//! call with neither token nor certificate. An accepted token's subject is
//! granted what the policy says and nothing more; a reviewed token is
//! reviewed once, not once per call; the client reads its token file for
//! every call, so a rotated token takes effect at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use cutover_client::{ClientTls, Colour, ControlClient};
use cutover_coordinator::CoordinatorConfig;
use cutover_coordinator::auth::Authoriser;
use cutover_coordinator::auth::token::{Issuer, TokenAuth};
use cutover_coordinator::tls::{ServerTls, TlsFiles};
use cutover_core::{Key, ScheduleRequest};
use cutover_proto::v1;
use cutover_proto::v1::gate_service_client::GateServiceClient;
use cutover_tests::kube_api::FakeApiServer;
use cutover_tests::pki::TestPki;
use cutover_tests::raw_session::hello;
use cutover_tests::{pipeline, serve_tls_on_free_port, test_config};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const OTHER_CLUSTER: &str = "https://oidc.cluster-b.example";

const POLICY: &str = r#"
grants:
  - identity: system:serviceaccount:flink:orders-blue
    role: gate
    pipelines: ["orders"]
    colours: [BLUE]
  - identity: system:serviceaccount:flink-b:orders-green@https://oidc.cluster-b.example
    role: gate
    pipelines: ["orders"]
    colours: [GREEN]
  - identity: system:serviceaccount:ops:release
    role: operator
  - identity: system:serviceaccount:ops:dashboard@https://oidc.cluster-b.example
    role: viewer
  # The same account name in this cluster is another caller.
  - identity: system:serviceaccount:flink-b:orders-green
    role: admin
"#;

/// An issuer of another cluster: an ES256 key and its JWKS.
struct OtherIssuer {
    key: jsonwebtoken::EncodingKey,
    jwks: String,
}

impl OtherIssuer {
    fn generate(kid: &str) -> anyhow::Result<Self> {
        let pair = rcgen::KeyPair::generate()?;
        let point = pair.public_key_raw();
        anyhow::ensure!(
            point.len() == 65 && point[0] == 4,
            "an uncompressed P-256 point"
        );
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        }]});
        Ok(OtherIssuer {
            key: jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())?,
            jwks: jwks.to_string(),
        })
    }

    /// A token of `subject` for `audience`, expiring `expires_in` seconds
    /// from now (negative: expired).
    fn token(&self, kid: &str, subject: &str, audience: &str, expires_in: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let claims = serde_json::json!({
            "iss": OTHER_CLUSTER, "sub": subject, "aud": [audience],
            "iat": now - 60, "nbf": now - 60, "exp": now + expires_in,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing a token")
    }
}

struct World {
    endpoint: String,
    pki: TestPki,
    api: FakeApiServer,
    issuer: OtherIssuer,
    dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl World {
    async fn start() -> anyhow::Result<Self> {
        let pki = TestPki::generate()?;
        let dir = tempfile::tempdir()?;
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, POLICY)?;
        let api = FakeApiServer::start().await?;
        let issuer = OtherIssuer::generate("b-1")?;
        let tokens = TokenAuth::new(
            "cutover".into(),
            vec![Issuer::from_jwks(OTHER_CLUSTER, &issuer.jwks).map_err(anyhow::Error::msg)?],
            Some(api.client_as("system:serviceaccount:cutover-system:cutover")?),
        );
        let config = CoordinatorConfig {
            authoriser: Some(Arc::new(Authoriser::load(policy)?)),
            tokens: Some(Arc::new(tokens)),
            ..test_config()
        };
        let tls = Arc::new(ServerTls::load_accepting_tokens(TlsFiles {
            cert: pki.server().cert,
            key: pki.server().key,
            client_ca: Some(pki.ca()),
        })?);
        let (port, stop) = serve_tls_on_free_port(config, tls).await?;
        Ok(World {
            endpoint: format!("https://127.0.0.1:{port}"),
            pki,
            api,
            issuer,
            dir,
            _stop: stop,
        })
    }

    /// Client settings presenting `token` (from a file), no certificate.
    fn with_token(&self, name: &str, token: &str) -> anyhow::Result<ClientTls> {
        let file = self.dir.path().join(format!("{name}.token"));
        std::fs::write(&file, token)?;
        Ok(self.token_file(file))
    }

    fn token_file(&self, file: PathBuf) -> ClientTls {
        ClientTls {
            ca: Some(self.pki.ca()),
            identity: None,
            domain: None,
            token_file: Some(file),
        }
    }

    async fn control(&self, tls: &ClientTls) -> anyhow::Result<ControlClient> {
        Ok(ControlClient::connect_with(&self.endpoint, tls).await?)
    }

    /// Opens a gate session with `tls` registering a gate of `colour` of
    /// `orders`; the status it ends with, or OK once a plan arrived.
    async fn register(&self, tls: &ClientTls, colour: v1::Colour) -> anyhow::Result<tonic::Status> {
        let endpoint = tls
            .apply(tonic::transport::Endpoint::from_shared(
                self.endpoint.clone(),
            )?)
            .map_err(anyhow::Error::msg)?;
        let mut client =
            GateServiceClient::with_interceptor(endpoint.connect().await?, tls.bearer(&endpoint));
        let (tx, rx) = mpsc::channel(4);
        tx.send(v1::ClientMessage {
            kind: Some(hello(vec![v1::GateIdentity {
                pipeline: "orders".into(),
                colour: colour as i32,
                job_id: "job".into(),
                gate_uid: "sink".into(),
                subtask_index: 0,
                parallelism: 1,
                attempt: 0,
            }])),
        })
        .await?;
        let mut inbound = match client.session(ReceiverStream::new(rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Ok(status),
        };
        let answer =
            tokio::time::timeout(std::time::Duration::from_secs(10), inbound.message()).await?;
        Ok(match answer {
            Ok(Some(_)) => tonic::Status::ok("a plan arrived"),
            Ok(None) => tonic::Status::unknown("ended without a status"),
            Err(status) => status,
        })
    }

    fn reviews(&self) -> u64 {
        self.api
            .requests_by("system:serviceaccount:cutover-system:cutover")
    }
}

fn assert_refused(status: &tonic::Status, code: tonic::Code, needle: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(needle), "{needle} in {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_this_cluster_are_reviewed_by_its_api_server() -> anyhow::Result<()> {
    let world = World::start().await?;
    world.api.issue_token(
        "tok-blue",
        "system:serviceaccount:flink:orders-blue",
        &["cutover"],
    );
    world.api.issue_token(
        "tok-vault",
        "system:serviceaccount:flink:orders-blue",
        &["vault"],
    );
    world.api.issue_token(
        "tok-release",
        "system:serviceaccount:ops:release",
        &["cutover"],
    );

    // The BLUE job's token registers a BLUE gate of `orders`, not a GREEN one.
    let blue = world.with_token("blue", "tok-blue")?;
    assert_eq!(
        world.register(&blue, v1::Colour::Blue).await?.code(),
        tonic::Code::Ok
    );
    let refused = world.register(&blue, v1::Colour::Green).await?;
    assert_refused(
        &refused,
        tonic::Code::PermissionDenied,
        "system:serviceaccount:flink:orders-blue",
    );
    // Reviewed once, then remembered.
    assert_eq!(world.reviews(), 1, "one review for two sessions");

    // A token for another audience, and one the API server never issued.
    for (name, token, reason) in [
        ("vault", "tok-vault", "audience"),
        ("forged", "not-a-token", "bearer token rejected"),
    ] {
        let tls = world.with_token(name, token)?;
        let status = world.register(&tls, v1::Colour::Blue).await?;
        assert_refused(&status, tonic::Code::Unauthenticated, reason);
        let mut control = world.control(&tls).await?;
        let denied = control.list().await.expect_err("refused");
        assert_eq!(
            denied.code(),
            Some(tonic::Code::Unauthenticated),
            "{denied}"
        );
    }

    // The release account operates; the control calls carry its token.
    let mut release = world
        .control(&world.with_token("release", "tok-release")?)
        .await?;
    let orders = pipeline("orders");
    let scheduled = release
        .schedule(&orders, ScheduleRequest::at(Colour::Green, Key(1 << 40)))
        .await?;
    assert!(scheduled.transition.is_some());
    let denied = release
        .delete(&orders)
        .await
        .expect_err("an operator does not delete");
    assert_eq!(denied.code(), Some(tonic::Code::PermissionDenied));

    // Neither token nor certificate: connected, but no identity.
    let anonymous = world.token_file(world.dir.path().join("absent.token"));
    let mut nobody = world
        .control(&ClientTls {
            token_file: None,
            ..anonymous
        })
        .await?;
    let denied = nobody.list().await.expect_err("no identity");
    assert_eq!(
        denied.code(),
        Some(tonic::Code::Unauthenticated),
        "{denied}"
    );

    // The coordinator asked for TokenReviews and nothing else.
    let used = world
        .api
        .permissions_used_by("system:serviceaccount:cutover-system:cutover");
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec![(
            "authentication.k8s.io".to_string(),
            "tokenreviews".to_string(),
            "create".to_string()
        )]
    );

    // An address that keeps presenting a forged token is reviewed once (a
    // refused token is remembered) and turned away once it collected its
    // allowance of refusals, before its token is looked at.
    let reviews = world.reviews();
    let mut forger = world
        .control(&world.with_token("forged", "not-a-token")?)
        .await?;
    let mut turned_away = None;
    for attempt in 0..60 {
        let refused = forger.list().await.expect_err("refused");
        if refused.code() == Some(tonic::Code::ResourceExhausted) {
            turned_away = Some(attempt);
            break;
        }
        assert_eq!(
            refused.code(),
            Some(tonic::Code::Unauthenticated),
            "{refused}"
        );
    }
    assert!(turned_away.is_some(), "never turned away");
    assert!(
        world.reviews() <= reviews + 1,
        "a refused token is reviewed once"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_another_cluster_are_checked_against_its_issuers_keys() -> anyhow::Result<()> {
    let world = World::start().await?;
    let issuer = &world.issuer;
    let green = issuer.token(
        "b-1",
        "system:serviceaccount:flink-b:orders-green",
        "cutover",
        600,
    );
    let tls = world.with_token("green", &green)?;
    assert_eq!(
        world.register(&tls, v1::Colour::Green).await?.code(),
        tonic::Code::Ok
    );
    let refused = world.register(&tls, v1::Colour::Blue).await?;
    assert_refused(
        &refused,
        tonic::Code::PermissionDenied,
        "system:serviceaccount:flink-b:orders-green@https://oidc.cluster-b.example",
    );
    assert_eq!(world.reviews(), 0, "checked offline, no review");

    // Expired, for another audience, a subject that is no ServiceAccount
    // (it must not pass for a certificate identity), signed by a key the
    // coordinator does not know (the same issuer name: another cluster's,
    // or a forger's).
    let stranger = OtherIssuer::generate("b-1")?;
    for (name, token, reason) in [
        (
            "expired",
            issuer.token(
                "b-1",
                "system:serviceaccount:flink-b:orders-green",
                "cutover",
                -600,
            ),
            "expired",
        ),
        (
            "audience",
            issuer.token(
                "b-1",
                "system:serviceaccount:flink-b:orders-green",
                "vault",
                600,
            ),
            "another audience",
        ),
        (
            "not-an-account",
            issuer.token(
                "b-1",
                "spiffe://cutover.dev/ns/ops/sa/release",
                "cutover",
                600,
            ),
            "not a ServiceAccount",
        ),
        (
            "stranger",
            stranger.token(
                "b-1",
                "system:serviceaccount:flink-b:orders-green",
                "cutover",
                600,
            ),
            "bearer token rejected",
        ),
    ] {
        let tls = world.with_token(name, &token)?;
        let status = world.register(&tls, v1::Colour::Green).await?;
        assert_refused(&status, tonic::Code::Unauthenticated, reason);
    }

    // The token file is read for every call: rotating it to the viewer's
    // token of the same cluster changes who calls, without reconnecting.
    let file = world.dir.path().join("rotating.token");
    std::fs::write(
        &file,
        issuer.token(
            "b-1",
            "system:serviceaccount:flink-b:orders-green",
            "cutover",
            600,
        ),
    )?;
    let mut control = world.control(&world.token_file(file.clone())).await?;
    let orders = pipeline("orders");
    let denied = control
        .get(&orders)
        .await
        .expect_err("a gate identity does not read");
    assert_eq!(
        denied.code(),
        Some(tonic::Code::PermissionDenied),
        "{denied}"
    );
    std::fs::write(
        &file,
        issuer.token("b-1", "system:serviceaccount:ops:dashboard", "cutover", 600),
    )?;
    control.get(&orders).await?;
    Ok(())
}
