//! The resource follows Kubernetes conventions, checked with the real
//! `kubectl` against the fake API server while the controller works:
//! `kubectl wait --for=condition=Ready` returns once a colour runs the
//! spec's template and not while a changed spec waits (its generation not
//! yet observed, or the transition under way); `Reconciling` is true while
//! the controller works towards the spec and `Stalled` when the spec cannot
//! be acted on; `status.observedGeneration` names the generation the status
//! describes; `kubectl get` prints the printer columns.

use std::path::Path;
use std::process::Output;

use anyhow::Context as _;

use cutover_controller::status_map::PROMOTE_ANNOTATION;
use cutover_tests::controller_world::*;
use serde_json::{Value, json};

/// `kubectl ARGS` with `kubeconfig`, off the runtime's threads.
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let kubeconfig = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Ok(tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .output()
    })
    .await??)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn wait_for_condition(
    kubeconfig: &Path,
    condition: &str,
    timeout: &str,
) -> anyhow::Result<Output> {
    kubectl(
        kubeconfig,
        &[
            "wait",
            "fbgd/orders",
            &format!("--for=condition={condition}"),
            &format!("--timeout={timeout}"),
        ],
    )
    .await
}

/// (name, JSONPath) of each printer column of the committed CRD, the
/// free-text ones (messages, errors) left out.
fn printer_columns() -> anyhow::Result<Vec<(String, String)>> {
    let crd: Value = serde_yaml::from_str(include_str!(
        "../../crds/flinkbluegreendeployments.cutover.dev.yaml"
    ))?;
    let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(columns
        .iter()
        .filter(|c| c["priority"].as_i64().unwrap_or(0) == 0)
        .filter_map(|c| {
            Some((
                c["name"].as_str()?.to_string(),
                c["jsonPath"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// `kubectl wait --for=condition=Ready` succeeds, and the resource is then
/// in `wanted` (returned).
async fn ready_in(
    world: &ControllerWorld,
    kubeconfig: &Path,
    wanted: &str,
) -> anyhow::Result<Value> {
    let ready = wait_for_condition(kubeconfig, "Ready", "60s").await?;
    assert!(ready.status.success(), "{}", text(&ready));
    let resource = world.resource("orders").context("the resource is gone")?;
    assert_eq!(state(&resource), wanted, "Ready in another state");
    Ok(resource)
}

fn generation(resource: &Value) -> i64 {
    resource["metadata"]["generation"].as_i64().unwrap_or(-1)
}

fn observed(resource: &Value) -> i64 {
    resource["status"]["observedGeneration"]
        .as_i64()
        .unwrap_or(-2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_for_ready_follows_the_spec() -> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = world.kubeconfig(dir.path())?;

    world
        .create("orders", "flink:2.0-v1", json!({"autoPromote": false}))
        .await?;
    let active = ready_in(&world, &kubeconfig, "ACTIVE_BLUE").await?;
    assert_eq!(observed(&active), generation(&active));
    assert!(!condition(&active, "Reconciling"));
    assert!(!condition(&active, "Stalled"));

    // The CRD's printer columns, evaluated by kubectl's own JSONPath (the
    // API server does the same for `kubectl get`).
    let columns = printer_columns()?;
    let spec = columns
        .iter()
        .map(|(name, path)| format!("{}:{path}", name.to_uppercase()))
        .collect::<Vec<_>>()
        .join(",");
    let printed = kubectl(
        &kubeconfig,
        &[
            "get",
            "fbgd",
            "orders",
            "-o",
            &format!("custom-columns={spec}"),
        ],
    )
    .await?;
    let table = text(&printed);
    assert!(printed.status.success(), "{table}");
    let rows: Vec<&str> = table.lines().collect();
    let cells: Vec<&str> = rows
        .get(1)
        .copied()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let cell = |name: &str| {
        let at = columns.iter().position(|(n, _)| n == name);
        at.and_then(|i| cells.get(i).copied()).unwrap_or("")
    };
    assert_eq!(cell("Ready"), "True", "{table}");
    assert_eq!(cell("State"), "ACTIVE_BLUE", "{table}");
    assert_eq!(cell("Active"), "BLUE", "{table}");
    assert_eq!(
        cell("Epoch"),
        active["status"]["epoch"].to_string(),
        "{table}"
    );

    // A new template: not Ready until GREEN runs it, even in the moment
    // before the controller has seen the new generation.
    world.set_image("orders", "flink:2.0-v2").await?;
    let early = wait_for_condition(&kubeconfig, "Ready", "1s").await?;
    assert!(!early.status.success(), "Ready too early: {}", text(&early));
    let waiting = world
        .wait_for("orders", "awaiting promotion", |r| {
            condition(r, "AwaitingPromotion")
        })
        .await?;
    assert_eq!(observed(&waiting), generation(&waiting));
    let reconciling = wait_for_condition(&kubeconfig, "Reconciling", "10s").await?;
    assert!(reconciling.status.success(), "{}", text(&reconciling));
    let not_yet = wait_for_condition(&kubeconfig, "Ready", "2s").await?;
    assert!(
        !not_yet.status.success(),
        "Ready while awaiting promotion: {}",
        text(&not_yet)
    );

    world
        .annotate("orders", PROMOTE_ANNOTATION, Some("green"))
        .await?;
    let green = ready_in(&world, &kubeconfig, "ACTIVE_GREEN").await?;
    assert!(condition(&green, "Ready"));

    // A spec the controller cannot act on: observed, Stalled, not Ready.
    let bad = json!({"spec": {"configuration": {"deletionDelay": "later"}}});
    world
        .resources
        .patch(
            "orders",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&bad),
        )
        .await?;
    let stalled = wait_for_condition(&kubeconfig, "Stalled", "30s").await?;
    assert!(stalled.status.success(), "{}", text(&stalled));
    let resource = world
        .wait_for("orders", "stalled", |r| condition(r, "Stalled"))
        .await?;
    assert_eq!(observed(&resource), generation(&resource));
    assert!(!condition(&resource, "Ready"));
    assert!(
        last_error(&resource).contains("deletionDelay"),
        "{resource}"
    );
    Ok(())
}
