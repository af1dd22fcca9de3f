//! TLS and mutual TLS on the gRPC port: a gate client and a control client
//! with certificates from the coordinator's client CA are served; a client
//! without a certificate, with one from another CA, or in plaintext is not.
//! The server certificate and the client CA rotate while a gate session
//! runs: the session goes on and receives plans, new handshakes use the
//! new files. `cutover serve` refuses plaintext on a non-loopback address.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, ClientTls, Colour, ControlClient};
use cutover_coordinator::store::MemoryStore;
use cutover_coordinator::tls::{ServerTls, TlsFiles};
use cutover_coordinator::{Coordinator, Metrics, serve_tls};
use cutover_core::{Epoch, Key, ScheduleRequest};
use cutover_tests::pki::TestPki;
use cutover_tests::process::cutover_binary;
use cutover_tests::{identity, pipeline, test_config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(20);

/// A coordinator serving TLS from the files in `dir` (copied from `pki`),
/// with `pki`'s CA as client CA: its `https://localhost` endpoint.
struct TlsCoordinator {
    endpoint: String,
    tls: Arc<ServerTls>,
    _stop: oneshot::Sender<()>,
}

fn install(pki: &TestPki, dir: &Path) -> anyhow::Result<TlsFiles> {
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        client_ca: Some(dir.join("client-ca.pem")),
    };
    std::fs::copy(pki.server().cert, &files.cert)?;
    std::fs::copy(pki.server().key, &files.key)?;
    if let Some(ca) = &files.client_ca {
        std::fs::copy(pki.ca(), ca)?;
    }
    Ok(files)
}

impl TlsCoordinator {
    async fn start(pki: &TestPki, dir: &Path) -> anyhow::Result<Self> {
        let tls = Arc::new(ServerTls::load(install(pki, dir)?)?);
        let coordinator = Coordinator::new(
            Arc::new(MemoryStore::new()),
            test_config(),
            Metrics::default(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve_tls(coordinator, listener, tls.clone(), async {
            let _ = stopped.await;
        }));
        Ok(TlsCoordinator {
            endpoint: format!("https://localhost:{port}"),
            tls,
            _stop: stop,
        })
    }
}

fn trusted(pki: &TestPki) -> ClientTls {
    ClientTls {
        ca: Some(pki.ca()),
        identity: Some((pki.client().cert, pki.client().key)),
        domain: None,
        token_file: None,
    }
}

/// Whether a control call through a new connection with `tls` succeeds.
async fn answers(endpoint: &str, tls: &ClientTls) -> bool {
    match ControlClient::connect_with(endpoint, tls).await {
        Ok(mut control) => control.list().await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_with_a_certificate_of_the_client_ca_are_served() -> anyhow::Result<()> {
    let (pki, other) = (TestPki::generate()?, TestPki::generate()?);
    let dir = tempfile::tempdir()?;
    let server = TlsCoordinator::start(&pki, dir.path()).await?;

    // A gate over mutual TLS opens its session and creates the pipeline.
    let client = Client::connect(ClientConfig::new(&server.endpoint).tls(trusted(&pki)))?;
    let _gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    let mut connected = client.connected();
    tokio::time::timeout(LIMIT, connected.wait_for(|&c| c)).await??;
    assert!(answers(&server.endpoint, &trusted(&pki)).await);

    // Refused: no client certificate, one from another CA, an expired one
    // of the right CA, a server certificate checked against another CA,
    // plaintext.
    let no_certificate = ClientTls {
        identity: None,
        ..trusted(&pki)
    };
    assert!(!answers(&server.endpoint, &no_certificate).await);
    let foreign_certificate = ClientTls {
        identity: Some((other.client().cert, other.client().key)),
        ..trusted(&pki)
    };
    assert!(!answers(&server.endpoint, &foreign_certificate).await);
    let expired = pki.expired_client()?;
    let expired_certificate = ClientTls {
        identity: Some((expired.cert, expired.key)),
        ..trusted(&pki)
    };
    assert!(!answers(&server.endpoint, &expired_certificate).await);
    assert!(!answers(&server.endpoint, &trusted(&other)).await);
    let plaintext = server.endpoint.replace("https://", "http://");
    assert!(!answers(&plaintext, &trusted(&pki)).await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_without_a_restart_and_sessions_go_on() -> anyhow::Result<()> {
    let (before, after) = (TestPki::generate()?, TestPki::generate()?);
    let dir = tempfile::tempdir()?;
    let server = TlsCoordinator::start(&before, dir.path()).await?;
    let name = pipeline("orders");
    let client = Client::connect(ClientConfig::new(&server.endpoint).tls(trusted(&before)))?;
    let _gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    let mut connected = client.connected();
    tokio::time::timeout(LIMIT, connected.wait_for(|&c| c)).await??;
    let sessions = client.sessions_opened();

    // Rotate: a server certificate of another CA, and that CA as client CA.
    install(&after, dir.path())?;
    assert!(server.tls.reload()?, "the changed files were installed");
    assert!(!server.tls.reload()?, "nothing new the second time");

    // New handshakes use the new files; the old ones are refused.
    assert!(answers(&server.endpoint, &trusted(&after)).await);
    assert!(!answers(&server.endpoint, &trusted(&before)).await);

    // The gate's session, established before, goes on: a transition
    // scheduled through a new connection reaches it.
    let mut control = ControlClient::connect_with(&server.endpoint, &trusted(&after)).await?;
    let status = control
        .schedule(&name, ScheduleRequest::at(Colour::Blue, Key(1_000_000)))
        .await?;
    let epoch: Epoch = status.plan.epoch;
    tokio::time::timeout(LIMIT, client.wait_for_epoch(&name, epoch)).await?;
    assert_eq!(client.sessions_opened(), sessions, "no reconnection");
    assert!(*client.connected().borrow());
    Ok(())
}

#[test]
fn serve_refuses_plaintext_on_an_address_other_than_loopback() -> anyhow::Result<()> {
    let output = std::process::Command::new(cutover_binary()?)
        .args(["serve", "--listen", "0.0.0.0:0", "--store", "memory"])
        .args(["--metrics-listen", "off"])
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("refusing plaintext gRPC on 0.0.0.0:0")
            && stderr.contains("--insecure-plaintext"),
        "{stderr}"
    );
    Ok(())
}

/// The CLI takes the CA, its certificate and key as flags (or the
/// CUTOVER_TLS_* variables): with them it is served, without a client
/// certificate it is refused at the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_speaks_mutual_tls_with_its_flags() -> anyhow::Result<()> {
    let pki = TestPki::generate()?;
    let dir = tempfile::tempdir()?;
    let coordinator = TlsCoordinator::start(&pki, dir.path()).await?;
    let list = |flags: Vec<String>| {
        let mut command = std::process::Command::new(cutover_binary()?);
        command
            .args(["list", "--endpoint", &coordinator.endpoint])
            .args(flags)
            .env_remove("CUTOVER_TLS_CA")
            .env_remove("CUTOVER_TLS_CERT")
            .env_remove("CUTOVER_TLS_KEY")
            .env_remove("CUTOVER_TOKEN_FILE");
        anyhow::Ok(command.output()?)
    };
    let ca = pki.ca().display().to_string();
    let client = pki.client();
    let served = list(vec![
        "--tls-ca".into(),
        ca.clone(),
        "--tls-cert".into(),
        client.cert.display().to_string(),
        "--tls-key".into(),
        client.key.display().to_string(),
    ])?;
    assert!(served.status.success(), "{served:?}");
    let refused = list(vec!["--tls-ca".into(), ca])?;
    assert!(
        !refused.status.success(),
        "no client certificate: {refused:?}"
    );
    Ok(())
}
