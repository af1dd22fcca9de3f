//! `kubectl cutover`, run by the real `kubectl` (the binary linked as
//! `kubectl-cutover` on the PATH) against the fake API server while the
//! controller works: `plan` prints the controller's steps for a spec change
//! and writes nothing (the API server's write log is unchanged); `status`
//! shows the resource, its children and the coordinator's live figures;
//! `abort` discards a transition waiting for its promotion; `promote`
//! refuses when nothing waits and promotes what does; `rollback` returns
//! to the template the kept previous colour ran.

use std::path::{Path, PathBuf};
use std::process::Output;

use cutover_tests::controller_world::*;
use cutover_tests::process::cutover_binary;
use serde_json::json;

/// A folder holding `kubectl-cutover` (a link to the cutover binary), to
/// put on the PATH.
fn plugin_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(cutover_binary()?, bin.join("kubectl-cutover"))?;
    Ok(bin)
}

/// `kubectl cutover ARGS` with the world's kubeconfig and the plugin on
/// the PATH.
async fn kubectl_cutover(kubeconfig: &Path, bin: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = std::process::Command::new("kubectl");
    command
        .arg("cutover")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path);
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

/// Waits until the resource's cutover waits for a promotion.
async fn until_awaiting_promotion(world: &ControllerWorld) -> anyhow::Result<()> {
    world
        .wait_for("orders", "awaiting promotion", |r| {
            condition(r, "AwaitingPromotion")
        })
        .await?;
    Ok(())
}

/// `kubectl cutover COMMAND orders` succeeds.
async fn succeeds(kubeconfig: &Path, bin: &Path, command: &str) -> anyhow::Result<()> {
    let output = kubectl_cutover(kubeconfig, bin, &[command, "orders"]).await?;
    anyhow::ensure!(output.status.success(), "{command}: {}", text(&output));
    Ok(())
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_plans_without_writing_and_drives_the_resource() -> anyhow::Result<()> {
    let mut world = ControllerWorld::start().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = world.kubeconfig(dir.path())?;
    let bin = plugin_dir(dir.path())?;
    world
        .create(
            "orders",
            "flink:2.0-v1",
            json!({"autoPromote": false, "deletionDelay": "1h"}),
        )
        .await?;
    world
        .wait_for("orders", "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
        .await?;

    // plan: the steps, and not one write (the controller stopped, so that
    // any write would be the plugin's).
    world.stop_controller().await?;
    let next = dir.path().join("next.yaml");
    let mut resource = world.resource("orders").unwrap_or_default();
    resource["spec"]["template"]["spec"]["image"] = json!("flink:2.0-v2");
    std::fs::write(&next, serde_yaml::to_string(&resource)?)?;
    let before = world.server.writes();
    let planned = kubectl_cutover(
        &kubeconfig,
        &bin,
        &["plan", "orders", "-f", &next.to_string_lossy()],
    )
    .await?;
    let plan = text(&planned);
    assert!(planned.status.success(), "{plan}");
    assert_eq!(world.server.writes(), before, "plan wrote: {plan}");
    for expected in [
        "create orders-green from the new template",
        "cutover BLUE -> GREEN at EARLIEST",
        "now about key",
        "kubectl cutover promote orders",
        "stop orders-blue with a savepoint",
        "deletionDelay (1h)",
        "abortable (`kubectl cutover abort orders`) until: the cutover becomes irrevocable",
        "(dry run: nothing was changed)",
    ] {
        assert!(plan.contains(expected), "{expected:?} missing:\n{plan}");
    }
    // A spec the controller would refuse: the reason, a failure, no write.
    resource["spec"]["configuration"]["horizonWindow"] = json!("0s");
    std::fs::write(&next, serde_yaml::to_string(&resource)?)?;
    let refused = kubectl_cutover(
        &kubeconfig,
        &bin,
        &["plan", "orders", "-f", &next.to_string_lossy()],
    )
    .await?;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("refused: spec.configuration.horizonWindow must be positive"));
    assert_eq!(world.server.writes(), before);

    let status = kubectl_cutover(&kubeconfig, &bin, &["status", "orders"]).await?;
    let shown = text(&status);
    assert!(status.status.success(), "{shown}");
    for expected in [
        "FlinkBlueGreenDeployment default/orders: ActiveBlue",
        "Ready: True (Active)",
        "orders-blue: running, active",
        "orders-green: none",
        "coordinator (live):",
        "BLUE  gates:",
    ] {
        assert!(shown.contains(expected), "{expected:?} missing:\n{shown}");
    }

    // Nothing waits for a promotion, and nothing runs to abort: refused.
    for command in ["promote", "abort"] {
        let refused = kubectl_cutover(&kubeconfig, &bin, &[command, "orders"]).await?;
        assert!(!refused.status.success(), "{command}: {}", text(&refused));
        assert!(text(&refused).contains("refused:"), "{}", text(&refused));
    }

    // v2 waits for its promotion: abort it.
    world.start_controller()?;
    world.set_image("orders", "flink:2.0-v2").await?;
    until_awaiting_promotion(&world).await?;
    succeeds(&kubeconfig, &bin, "abort").await?;
    let back = world
        .wait_for("orders", "ACTIVE_BLUE without GREEN", |r| {
            state(r) == "ACTIVE_BLUE" && condition(r, "Stalled")
        })
        .await?;
    assert!(
        back["metadata"]["annotations"]
            .get("cutover.dev/abort")
            .is_none(),
        "the request is consumed: {back}"
    );
    world
        .wait_for_child("orders-green", "deleted", |c| c.is_null())
        .await?;
    world.wait_for_event("orders", "AbortRequested").await?;

    // v3: promoted through the plugin, GREEN takes over.
    world.set_image("orders", "flink:2.0-v3").await?;
    until_awaiting_promotion(&world).await?;
    succeeds(&kubeconfig, &bin, "promote").await?;
    world
        .wait_for("orders", "ACTIVE_GREEN", |r| state(r) == "ACTIVE_GREEN")
        .await?;

    // Rollback: back to v1, the template BLUE (kept for the deletion
    // delay) ran, through a transition of its own.
    succeeds(&kubeconfig, &bin, "rollback").await?;
    let resource = world.resource("orders").unwrap_or_default();
    assert_eq!(
        resource["spec"]["template"]["spec"]["image"], "flink:2.0-v1",
        "{resource}"
    );
    until_awaiting_promotion(&world).await?;
    succeeds(&kubeconfig, &bin, "promote").await?;
    let blue = world
        .wait_for("orders", "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
        .await?;
    assert!(condition(&blue, "Ready"), "{blue}");
    Ok(())
}
