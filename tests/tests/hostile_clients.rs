//! Hostile clients against a coordinator over mutual TLS, bounded: idle
//! connections, unfinished handshakes and connections that finish the
//! handshake and then send nothing are closed by the coordinator at its
//! handshake timeout; gate sessions that never read do not hold back
//! the gates that do; a message over the size limit ends its session with
//! OUT_OF_RANGE. Meanwhile a served gate keeps receiving every plan. (The
//! figures at full scale: `cutover bench exhaustion`.)

use std::sync::Arc;
use std::time::Duration;

use cutover_cli::bench::hostile::{
    UnreadSessions, closed_by_server, idle_connections, oversized_hello, silent_after_handshake,
    unfinished_handshakes,
};
use cutover_client::{Client, ClientConfig, ClientTls, Colour, ControlClient, Key};
use cutover_coordinator::store::MemoryStore;
use cutover_coordinator::tls::{ServerTls, TlsFiles};
use cutover_coordinator::{Coordinator, CoordinatorConfig, Metrics, serve_tls};
use cutover_core::ScheduleRequest;
use cutover_tests::pki::TestPki;
use cutover_tests::{identity, pipeline, test_config};
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_cut_off_and_served_gates_go_on() -> anyhow::Result<()> {
    let pki = TestPki::generate()?;
    let tls_files = TlsFiles {
        cert: pki.server().cert,
        key: pki.server().key,
        client_ca: Some(pki.ca()),
    };
    let config = CoordinatorConfig {
        handshake_timeout: Duration::from_millis(500),
        max_message_bytes: 1024 * 1024,
        ..test_config()
    };
    let coordinator = Coordinator::new(Arc::new(MemoryStore::new()), config, Metrics::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let endpoint = format!("https://localhost:{}", address.port());
    tokio::spawn(serve_tls(
        coordinator,
        listener,
        Arc::new(ServerTls::load(tls_files)?),
        std::future::pending(),
    ));
    let tls = ClientTls {
        ca: Some(pki.ca()),
        identity: Some((pki.client().cert, pki.client().key)),
        domain: None,
        token_file: None,
    };
    let mut control = ControlClient::connect_with(&endpoint, &tls).await?;
    let served = pipeline("served");
    control.create(&served, Colour::Green, None).await?;
    let client = Client::connect(ClientConfig::new(&endpoint).tls(tls.clone()))?;
    let _gate = client.gate(identity("served", Colour::Green, 0, 1))?;
    control
        .wait_for(&served, LIMIT, |s| s.green.acked == 1)
        .await?;
    let mut next = 0i64;
    let mut plan_reaches_the_gate = async |control: &mut ControlClient| -> anyhow::Result<()> {
        next += 1;
        let status = control
            .schedule(
                &served,
                ScheduleRequest::at(Colour::Blue, Key((1 << 50) + next)),
            )
            .await?;
        let epoch = status.plan.epoch;
        control
            .wait_for(&served, LIMIT, |s| {
                s.plan.epoch >= epoch && s.green.acked == 1
            })
            .await?;
        control.abort(&served).await?;
        Ok(())
    };

    // Idle connections and unfinished handshakes: all closed by the
    // coordinator; the gate is served meanwhile.
    let idle = idle_connections(address, 300).await?;
    let partial = unfinished_handshakes(address, 100).await?;
    let silent = silent_after_handshake(address, &tls, 50).await?;
    plan_reaches_the_gate(&mut control).await?;
    assert_eq!(closed_by_server(idle, LIMIT).await, 300);
    assert_eq!(closed_by_server(partial, LIMIT).await, 100);
    assert_eq!(
        closed_by_server(silent, LIMIT).await,
        50,
        "TLS, then nothing"
    );

    // Sessions that never read, while their pipeline's plan changes.
    let unread = pipeline("unread");
    control.create(&unread, Colour::Green, None).await?;
    let sessions = UnreadSessions::open(&endpoint, &tls, "unread", 50, 10).await?;
    control
        .wait_for(&unread, LIMIT, |s| s.green.connected == 50)
        .await?;
    for i in 0..30 {
        control
            .schedule(
                &unread,
                ScheduleRequest::at(Colour::Blue, Key((1 << 50) + i)),
            )
            .await?;
        control.abort(&unread).await?;
        plan_reaches_the_gate(&mut control).await?;
    }
    drop(sessions);
    control
        .wait_for(&unread, LIMIT, |s| s.green.connected == 0)
        .await?;

    // A message over the limit ends its own session only.
    let status = oversized_hello(&endpoint, &tls, 8 * 1024 * 1024).await?;
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    plan_reaches_the_gate(&mut control).await?;
    Ok(())
}
