//! `--store etcd:https://...` with `--etcd-ca-file`, `--etcd-cert-file` and
//! `--etcd-key-file` against a real etcd that requires client certificates;
//! settings that cannot work are refused with a reason.

use cutover_cli::store_spec::{StoreOptions, StoreSpec};
use cutover_coordinator::store::CasOutcome;
use cutover_core::{Colour, HorizonPolicy, PipelineDoc, PipelineName};
use cutover_tests::etcd::EtcdServer;
use cutover_tests::pki::TestPki;

fn tls_options(pki: &TestPki, with_client_certificate: bool) -> StoreOptions {
    let client = pki.client();
    StoreOptions {
        etcd_prefix: "/tls/".into(),
        etcd_ca_file: Some(pki.ca()),
        etcd_cert_file: with_client_certificate.then_some(client.cert),
        etcd_key_file: with_client_certificate.then_some(client.key),
        ..StoreOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_store_options_reach_an_etcd_requiring_client_certificates() -> anyhow::Result<()> {
    let pki = TestPki::generate()?;
    let etcd = EtcdServer::start_tls(&pki).await?;
    let spec: StoreSpec = format!("etcd:{}", etcd.endpoint).parse()?;

    let store = spec.open(&tls_options(&pki, true)).await?;
    let name = PipelineName::new("orders")?;
    let doc = PipelineDoc::new(
        name.clone(),
        Colour::Green,
        HorizonPolicy::default(),
        cutover_core::Incarnation(1),
    );
    assert!(matches!(
        store.compare_and_swap(&name, None, &doc).await?,
        CasOutcome::Written(_)
    ));
    let mut raw =
        etcd_client::Client::connect([&etcd.endpoint], Some(etcd.connect_options())).await?;
    let stored = raw.get("/tls/orders", None).await?;
    assert_eq!(stored.kvs().len(), 1, "the document is under the prefix");

    // Without a client certificate etcd refuses the handshake.
    let refused = match spec.open(&tls_options(&pki, false)).await {
        Ok(store) => store
            .load(&name)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    assert!(refused.is_err(), "etcd requires a client certificate");
    Ok(())
}

/// Opens `spec` with `options`, expecting an error that mentions `reason`.
async fn assert_refused(spec: &str, options: &StoreOptions, reason: &str) -> anyhow::Result<()> {
    let spec: StoreSpec = spec.parse()?;
    let error = spec.open(options).await.err().map(|e| format!("{e:#}"));
    assert!(
        error.as_deref().is_some_and(|e| e.contains(reason)),
        "{error:?} should mention {reason:?}"
    );
    Ok(())
}

#[tokio::test]
async fn tls_settings_that_cannot_work_are_refused() -> anyhow::Result<()> {
    let pki = TestPki::generate()?;
    assert_refused(
        "etcd:http://127.0.0.1:1",
        &tls_options(&pki, true),
        "TLS settings need https:// endpoints",
    )
    .await?;
    assert_refused(
        "etcd:https://127.0.0.1:1,http://127.0.0.1:2",
        &StoreOptions::default(),
        "mix http:// and https://",
    )
    .await?;
    let missing = StoreOptions {
        etcd_ca_file: Some(pki.ca().with_file_name("absent.pem")),
        ..StoreOptions::default()
    };
    assert_refused("etcd:https://127.0.0.1:1", &missing, "reading etcd CA file").await
}
