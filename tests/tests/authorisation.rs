//! Authorisation end to end, over mutual TLS with a policy: identities from
//! client certificates (SPIFFE URIs), roles per pipeline and colour. A gate
//! identity for pipeline `orders` colour BLUE registers BLUE gates there and
//! nothing else; a viewer reads and cannot change; an operator schedules
//! but cannot delete; refusals are PERMISSION_DENIED naming the identity and
//! the missing grant, change nothing, and are audited; the policy file is
//! re-read when it changes.

use std::sync::Arc;

use cutover_client::{ClientTls, Colour, ControlClient};
use cutover_coordinator::CoordinatorConfig;
use cutover_coordinator::auth::Authoriser;
use cutover_coordinator::tls::{ServerTls, TlsFiles};
use cutover_core::{Key, ScheduleRequest};
use cutover_proto::v1;
use cutover_tests::pki::{CertFiles, TestPki};
use cutover_tests::raw_session::{RawSession, hello};
use cutover_tests::{pipeline, serve_tls_on_free_port, test_config};
use tokio::sync::oneshot;

const POLICY: &str = r#"
grants:
  - identity: spiffe://test/orders-blue
    role: gate
    pipelines: ["orders"]
    colours: [BLUE]
  - identity: spiffe://test/viewer
    role: viewer
  - identity: spiffe://test/operator
    role: operator
    pipelines: ["orders"]
"#;

struct Secured {
    endpoint: String,
    pki: TestPki,
    policy: std::path::PathBuf,
    authoriser: Arc<Authoriser>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Secured {
    async fn start() -> anyhow::Result<Self> {
        let pki = TestPki::generate()?;
        let dir = tempfile::tempdir()?;
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, POLICY)?;
        let authoriser = Arc::new(Authoriser::load(policy.clone())?);
        let tls = Arc::new(ServerTls::load(TlsFiles {
            cert: pki.server().cert,
            key: pki.server().key,
            client_ca: Some(pki.ca()),
        })?);
        let config = CoordinatorConfig {
            authoriser: Some(authoriser.clone()),
            ..test_config()
        };
        let (port, stop) = serve_tls_on_free_port(config, tls).await?;
        Ok(Secured {
            endpoint: format!("https://localhost:{port}"),
            pki,
            policy,
            authoriser,
            _dir: dir,
            _stop: stop,
        })
    }

    fn tls(&self, files: Option<CertFiles>) -> ClientTls {
        ClientTls {
            ca: Some(self.pki.ca()),
            identity: files.map(|f| (f.cert, f.key)),
            domain: None,
            token_file: None,
        }
    }

    fn as_(&self, name: &str) -> anyhow::Result<ClientTls> {
        let files = self
            .pki
            .client_with_uri(name, &format!("spiffe://test/{name}"))?;
        Ok(self.tls(Some(files)))
    }

    async fn session(&self, tls: &ClientTls, gate: v1::GateIdentity) -> anyhow::Result<RawSession> {
        let endpoint = tonic::transport::Endpoint::from_shared(self.endpoint.clone())?;
        let channel = tls
            .apply(endpoint)
            .map_err(anyhow::Error::msg)?
            .connect()
            .await?;
        RawSession::open_on(channel, hello(vec![gate])).await
    }
}

fn gate(pipeline: &str, colour: v1::Colour) -> v1::GateIdentity {
    v1::GateIdentity {
        pipeline: pipeline.into(),
        colour: colour as i32,
        job_id: "job".into(),
        gate_uid: "sink".into(),
        subtask_index: 0,
        parallelism: 1,
        attempt: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_identity_does_what_its_grants_allow_and_nothing_else() -> anyhow::Result<()> {
    let secured = Secured::start().await?;
    let orders = pipeline("orders");
    let gate_identity = secured.as_("orders-blue")?;

    // The gate identity registers a BLUE gate of `orders` (creating it).
    let mut blue = secured
        .session(&gate_identity, gate("orders", v1::Colour::Blue))
        .await?;
    blue.snapshot().await?;
    // Not a GREEN gate, not another pipeline's gate.
    for (pipeline, colour) in [
        ("orders", v1::Colour::Green),
        ("payments", v1::Colour::Blue),
    ] {
        let mut refused = secured
            .session(&gate_identity, gate(pipeline, colour))
            .await?;
        let status = refused.status().await?;
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().contains("spiffe://test/orders-blue")
                && status.message().contains("gate grant")
                && status.message().contains(pipeline),
            "{}",
            status.message()
        );
    }
    // The gate identity cannot use the control API either.
    let mut as_gate = ControlClient::connect_with(&secured.endpoint, &gate_identity).await?;
    let denied = as_gate.get(&orders).await.expect_err("no viewer grant");
    assert_eq!(denied.code(), Some(tonic::Code::PermissionDenied));

    // The viewer reads, lists only what it may see, and cannot change.
    let mut viewer =
        ControlClient::connect_with(&secured.endpoint, &secured.as_("viewer")?).await?;
    let before = viewer.get(&orders).await?;
    assert_eq!(before.blue.connected, 1);
    assert!(
        viewer
            .list()
            .await?
            .pipelines
            .iter()
            .any(|p| p.name == orders)
    );
    let schedule = ScheduleRequest::at(Colour::Green, Key(1_000_000));
    let denied = viewer
        .schedule(&orders, schedule)
        .await
        .expect_err("a viewer does not schedule");
    assert_eq!(denied.code(), Some(tonic::Code::PermissionDenied));
    assert_eq!(
        viewer.get(&orders).await?.plan,
        before.plan,
        "nothing changed"
    );

    // The operator schedules on `orders`, and cannot delete it.
    let mut operator =
        ControlClient::connect_with(&secured.endpoint, &secured.as_("operator")?).await?;
    let scheduled = operator.schedule(&orders, schedule).await?;
    assert!(scheduled.transition.is_some());
    let denied = operator.delete(&orders).await.expect_err("no admin grant");
    assert_eq!(denied.code(), Some(tonic::Code::PermissionDenied));
    assert!(denied.to_string().contains("admin"), "{denied}");

    // A certificate without a grant, and no certificate at all (refused
    // at the handshake: mutual TLS).
    let mut stranger =
        ControlClient::connect_with(&secured.endpoint, &secured.as_("stranger")?).await?;
    let denied = stranger.list().await;
    assert!(
        denied.is_ok_and(|l| l.pipelines.is_empty()),
        "lists nothing"
    );
    let anonymous = ControlClient::connect_with(&secured.endpoint, &secured.tls(None)).await;
    assert!(match anonymous {
        Ok(mut c) => c.list().await.is_err(),
        Err(_) => true,
    });
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_applies_to_the_next_call() -> anyhow::Result<()> {
    let secured = Secured::start().await?;
    let mut gate_session = secured
        .session(
            &secured.as_("orders-blue")?,
            gate("orders", v1::Colour::Blue),
        )
        .await?;
    gate_session.snapshot().await?;
    let mut viewer =
        ControlClient::connect_with(&secured.endpoint, &secured.as_("viewer")?).await?;
    viewer.get(&pipeline("orders")).await?;
    // The viewer's grant is withdrawn: its next call is refused.
    std::fs::write(
        &secured.policy,
        POLICY.replace("spiffe://test/viewer", "spiffe://test/other"),
    )?;
    assert!(secured.authoriser.reload()?);
    let denied = viewer
        .get(&pipeline("orders"))
        .await
        .expect_err("withdrawn");
    assert_eq!(denied.code(), Some(tonic::Code::PermissionDenied));
    // A policy that does not parse leaves the last good one in force.
    std::fs::write(&secured.policy, "grants: [")?;
    assert!(secured.authoriser.reload().is_err());
    assert!(viewer.get(&pipeline("orders")).await.is_err());
    Ok(())
}

/// Reflection follows viewer: a caller with a viewer grant (on any
/// pipeline) lists the services; a gate-only identity is refused,
/// naming itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_needs_a_viewer_grant() -> anyhow::Result<()> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let secured = Secured::start().await?;
    let list_services = |tls: ClientTls| {
        let endpoint = secured.endpoint.clone();
        async move {
            let channel = tls
                .apply(tonic::transport::Endpoint::from_shared(endpoint)?)
                .map_err(anyhow::Error::msg)?
                .connect()
                .await?;
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let answer = ServerReflectionClient::new(channel)
                .server_reflection_info(tokio_stream::iter([request]))
                .await;
            anyhow::Ok(match answer {
                Err(status) => Err(status),
                Ok(response) => response.into_inner().message().await.map(|m| m.is_some()),
            })
        }
    };
    let viewer = list_services(secured.as_("viewer")?).await?;
    assert_eq!(viewer.ok(), Some(true), "a viewer lists the services");
    let refused = list_services(secured.as_("orders-blue")?)
        .await?
        .expect_err("a gate identity has no viewer grant");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("spiffe://test/orders-blue")
            && refused.message().contains("viewer"),
        "{refused:?}"
    );
    Ok(())
}
