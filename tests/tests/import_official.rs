//! `cutover import` on a sample of the official operator's
//! FlinkBlueGreenDeployment: the printed YAML (notes as comments) is a
//! cutover resource that the controller runs: BLUE starts from the given
//! savepoint with the template carried over, without the official gate's
//! settings.

use cutover_crds::FlinkBlueGreenDeployment;
use cutover_tests::controller_world::*;
use cutover_tests::process::cutover_binary;
use kube::api::PostParams;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crds/tests/fixtures/official-bluegreen.yaml"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_official_resource_runs_under_the_controller() -> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    let endpoint = world.coordinator.endpoint();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cutover_binary()?)
            .args(["import", "-f", FIXTURE, "--coordinator", &endpoint])
            .args([
                "--initial-savepoint",
                "s3://flink/savepoints/sp-orders-green",
            ])
            .output()
            .map_err(anyhow::Error::from)
    })
    .await??;
    let yaml = String::from_utf8(output.stdout)?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        yaml.lines()
            .take_while(|l| l.starts_with('#'))
            .any(|l| l.contains("gate.timeout")),
        "the notes come first, as comments:\n{yaml}"
    );
    let mut resource: FlinkBlueGreenDeployment = serde_yaml::from_str(&yaml)?;
    // The test cluster's namespace instead of the sample's.
    resource.metadata.namespace = None;
    world
        .resources
        .create(&PostParams::default(), &resource)
        .await?;
    let active = world
        .wait_for("orders", "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
        .await?;
    assert!(condition(&active, "Ready"), "{active}");
    let blue = world.child("orders-blue").unwrap_or_default();
    assert_eq!(
        blue["spec"]["job"]["initialSavepointPath"], "s3://flink/savepoints/sp-orders-green",
        "{blue}"
    );
    assert_eq!(
        blue["spec"]["image"], "registry.example.com/orders:2.4.1",
        "{blue}"
    );
    let flink = &blue["spec"]["flinkConfiguration"];
    assert!(flink.get("bluegreen.gate.strategy").is_none(), "{flink}");
    assert_eq!(flink["cutover.pipeline"], "default-orders", "{flink}");
    Ok(())
}
