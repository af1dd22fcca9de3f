//! The controller end to end: `cutover_controller::edge::run` against the
//! fake Kubernetes API server (reached by kube's real client), a real
//! coordinator, and a simulated Flink operator whose children run real
//! gate sessions. A full BLUE → GREEN → BLUE cycle and deletion, an abort
//! within the grace period, a manual promotion, and a controller restarted
//! in the middle of a transition.

use cutover_controller::status_map::PROMOTE_ANNOTATION;
use cutover_tests::controller_world::*;

use cutover_core::{Colour, Phase, PipelineName, PipelineStatus};
use cutover_tests::process::cutover_binary;
use kube::api::Patch;
use serde_json::{Value, json};

/// The coordinator's status of the pipeline of resource `name`.
async fn pipeline(world: &ControllerWorld, name: &str) -> anyhow::Result<PipelineStatus> {
    let mut control = world.coordinator.control().await?;
    Ok(control
        .get(&PipelineName::new(format!("{NAMESPACE}-{name}"))?)
        .await?)
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_to_green_to_blue_then_deletion_cleans_up() -> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    world
        .create("orders", "flink:2.0-v1", json!({"horizonWindow": "3s"}))
        .await?;

    let blue = world
        .wait_for("orders", "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
        .await?;
    assert!(condition(&blue, "Ready"), "{blue}");
    // The controller created the pipeline with the resource's horizon
    // window (the coordinator's own is 1 s).
    let pipeline_name = PipelineName::new("default-orders")?;
    let doc = world
        .coordinator
        .coordinator
        .cell(&pipeline_name)
        .await?
        .doc();
    assert_eq!(doc.policy.window, 3_000);
    assert_eq!(
        blue["metadata"]["finalizers"],
        json!(["cutover.dev/pipeline-state"])
    );
    let child = world.child("orders-blue").expect("the BLUE child");
    let config = &child["spec"]["flinkConfiguration"];
    assert_eq!(config["cutover.pipeline"], "default-orders");
    assert_eq!(config["cutover.colour"], "BLUE");
    assert_eq!(
        config["cutover.coordinator"],
        world.coordinator.endpoint().as_str()
    );
    assert_eq!(
        config["taskmanager.numberOfTaskSlots"], "2",
        "the template's own keys stay"
    );
    assert_eq!(child["metadata"]["labels"]["team"], "payments");
    assert_eq!(
        child["metadata"]["ownerReferences"][0]["uid"],
        blue["metadata"]["uid"]
    );
    assert!(child["spec"]["job"].get("initialSavepointPath").is_none());

    // A new template: GREEN starts from BLUE's savepoint, takes over at
    // EARLIEST, BLUE stops with a savepoint and goes (deletion delay 0s).
    world.set_image("orders", "flink:2.0-v2").await?;
    let green = world
        .wait_for("orders", "ACTIVE_GREEN with BLUE gone", |r| {
            state(r) == "ACTIVE_GREEN"
        })
        .await?;
    world
        .wait_for_child("orders-blue", "deleted", Value::is_null)
        .await?;
    let child = world.child("orders-green").expect("the GREEN child");
    assert!(
        starts_from_savepoint_of(&child, "orders-blue"),
        "GREEN starts from BLUE's savepoint: {child}"
    );
    assert_eq!(child["spec"]["image"], "flink:2.0-v2");
    assert_eq!(
        child["spec"]["flinkConfiguration"]["cutover.colour"],
        "GREEN"
    );
    let status = pipeline(&world, "orders").await?;
    assert_eq!(status.active, Colour::Green);
    assert_eq!(status.phase, Some(Phase::Completed));
    let first_epoch = status.plan.epoch;
    assert!(green["status"]["epoch"].as_u64().is_some());

    // And back: the rollback is the same flow in reverse.
    world
        .roll_to("orders", "flink:2.0-v1", "ACTIVE_BLUE")
        .await?;
    world
        .wait_for_child("orders-green", "deleted", Value::is_null)
        .await?;
    let status = pipeline(&world, "orders").await?;
    assert_eq!(status.active, Colour::Blue);
    assert_eq!(status.phase, Some(Phase::Completed));
    assert!(status.plan.epoch > first_epoch);

    for expected in [
        "CreatingBlue",
        "BlueActive",
        "StartingNewColour",
        "CutoverScheduled",
        "Draining",
        "Completed",
        "Active",
        "DeletedOldColour",
    ] {
        world.wait_for_event("orders", expected).await?;
    }
    // One schedule and one completion per transition, nothing repeated.
    assert_eq!(world.actions_done("ScheduleCutover"), 2);
    assert_eq!(world.actions_done("CompleteTransition"), 2);

    // Deleting the resource deletes the children and the pipeline's state.
    world
        .resources
        .delete("orders", &Default::default())
        .await?;
    world.wait_for("orders", "deleted", Value::is_null).await?;
    assert!(world.child("orders-blue").is_none());
    let mut control = world.coordinator.control().await?;
    let gone = control.get(&PipelineName::new("default-orders")?).await;
    assert_eq!(
        gone.map(|_| ()).map_err(|e| e.code()),
        Err(Some(tonic::Code::NotFound))
    );

    // deploy/base/controller.yaml grants what the controller did, and nothing
    // it did not (an Event series is patched only on repeats).
    let used = world.server.permissions_used_by(CONTROLLER_USER);
    let granted = granted_by_deploy()?;
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(missing.is_empty(), "the ClusterRole lacks {missing:?}");
    let unused: Vec<_> = granted
        .difference(&used)
        // An Event series is patched only on repeats; Secrets are read
        // only for a colour placed in another cluster.
        .filter(|(group, resource, verb)| {
            !(group == "events.k8s.io" && verb == "patch") && resource != "secrets"
        })
        .collect();
    assert!(
        unused.is_empty(),
        "the ClusterRole grants unused {unused:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_colour_failing_within_the_grace_period_is_aborted() -> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    // GREEN runs and the cutover waits for a promotion; then GREEN's job
    // fails (the simulated operator reports it): the scheduled cutover is
    // aborted, GREEN deleted, BLUE keeps emitting.
    world.awaiting_promotion("orders").await?;
    assert_eq!(
        pipeline(&world, "orders").await?.phase,
        Some(Phase::Scheduled)
    );
    let crash = json!({"status": {"jobStatus": {"state": "FAILED"}, "error": "TaskManager lost"}});
    world
        .children
        .patch_status(
            "orders-green",
            &Default::default(),
            &kube::api::Patch::Merge(&crash),
        )
        .await?;
    let aborted = world
        .wait_for("orders", "back to ACTIVE_BLUE", |r| {
            state(r) == "ACTIVE_BLUE"
        })
        .await?;
    world
        .wait_for_child("orders-green", "deleted", Value::is_null)
        .await?;
    assert!(
        aborted["status"]["lastError"].is_string(),
        "the status shows why: {aborted}"
    );
    let status = pipeline(&world, "orders").await?;
    assert_eq!(status.phase, Some(Phase::Aborted));
    assert_eq!(status.active, Colour::Blue);
    world
        .wait_for_event_where("orders", "Aborted", |note| {
            note.contains("GREEN failed: TaskManager lost")
        })
        .await?;

    // The failed template is not retried; a broken image now fails before
    // any cutover is scheduled and is backed out too; a good one goes
    // through.
    let rejected = world.wait_for_error("orders", "rolled back").await?;
    assert!(rejected["status"]["rejectedTemplateHash"].is_string());
    assert!(world.child("orders-green").is_none());
    world.set_image("orders", "broken").await?;
    world
        .wait_for("orders", "rejecting the broken image", |r| {
            state(r) == "ACTIVE_BLUE"
                && (last_error(r).contains("simulated: the image cannot start")
                    || last_error(r).contains("rolled back"))
                && r["status"]["rejectedTemplateHash"] != rejected["status"]["rejectedTemplateHash"]
        })
        .await?;
    world
        .wait_for_child("orders-green", "deleted", Value::is_null)
        .await?;
    assert_eq!(
        pipeline(&world, "orders").await?.phase,
        Some(Phase::Aborted)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_promotion_waits_for_the_annotation() -> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    let waiting = world.awaiting_promotion("orders").await?;
    assert_eq!(state(&waiting), "TRANSITIONING_TO_GREEN");
    let status = pipeline(&world, "orders").await?;
    let transition = status.transition.expect("a transition");
    assert!(!transition.auto_promote && !transition.promoted);
    let horizon = status.plan.horizon;
    assert!(
        horizon <= transition.at,
        "the horizon waits below the cutover"
    );

    // `cutover promote --resource` sets the annotation the controller acts on.
    let dir = tempfile::tempdir()?;
    let kubeconfig = world.kubeconfig(dir.path())?;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cutover_binary()?)
            .args(["promote", "orders", "--resource"])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .map_err(anyhow::Error::from)
    })
    .await??;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let promoted = world
        .wait_for("orders", "ACTIVE_GREEN", |r| state(r) == "ACTIVE_GREEN")
        .await?;
    assert!(
        promoted["metadata"]["annotations"]
            .get(PROMOTE_ANNOTATION)
            .is_none(),
        "the annotation is consumed: {promoted}"
    );
    assert!(!condition(&promoted, "AwaitingPromotion"));
    let status = pipeline(&world, "orders").await?;
    assert_eq!(status.active, Colour::Green);
    assert!(status.transition.is_some_and(|t| t.promoted));
    world.wait_for_event("orders", "Promoted").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_finishes_the_transition() -> anyhow::Result<()> {
    let mut world = ControllerWorld::start().await?;
    world.awaiting_promotion("orders").await?;
    let green = world.child("orders-green").expect("the GREEN child");
    let scheduled = pipeline(&world, "orders").await?;

    // The controller goes away mid-transition; the promotion is asked for
    // while none runs; a new one picks up from the status.
    world.stop_controller().await?;
    world
        .annotate("orders", PROMOTE_ANNOTATION, Some("true"))
        .await?;
    assert_eq!(
        pipeline(&world, "orders").await?.phase,
        Some(Phase::Scheduled),
        "nothing promotes without a controller"
    );
    world.start_controller()?;
    world
        .wait_for("orders", "ACTIVE_GREEN", |r| state(r) == "ACTIVE_GREEN")
        .await?;
    world
        .wait_for_child("orders-blue", "deleted", Value::is_null)
        .await?;
    let after = world.child("orders-green").expect("the GREEN child");
    assert_eq!(uid(&after), uid(&green), "GREEN was not recreated");
    let status = pipeline(&world, "orders").await?;
    assert_eq!(status.active, Colour::Green);
    assert_eq!(status.phase, Some(Phase::Completed));
    assert!(
        status.transition.as_ref().map(|t| t.id) == scheduled.transition.as_ref().map(|t| t.id),
        "the same transition completed, no second one was scheduled"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_the_active_colour_with_a_savepoint_and_resume_restarts_it()
-> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    world.create("orders", "flink:2.0-v1", json!({})).await?;
    world
        .wait_for("orders", "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
        .await?;
    let suspend = |on: bool| json!({"spec": {"suspend": on}});
    world
        .resources
        .patch("orders", &Default::default(), &Patch::Merge(&suspend(true)))
        .await?;
    let child = world
        .wait_for_child("orders-blue", "SUSPENDED", |c| {
            c["status"]["lifecycleState"] == "SUSPENDED"
        })
        .await?;
    assert_eq!(child["spec"]["job"]["state"], "suspended");
    assert!(child["status"]["jobStatus"]["upgradeSavepointPath"].is_string());
    let status = pipeline(&world, "orders").await?;
    assert_eq!(status.blue.connected, 0, "BLUE's gates are gone");

    world
        .resources
        .patch(
            "orders",
            &Default::default(),
            &Patch::Merge(&suspend(false)),
        )
        .await?;
    let child = world
        .wait_for_child("orders-blue", "RUNNING again", |c| {
            c["status"]["lifecycleState"] == "STABLE"
        })
        .await?;
    assert_eq!(child["spec"]["job"]["state"], "running");
    world.wait_for_event("orders", "Suspending").await?;
    world.wait_for_event("orders", "Resuming").await?;
    assert!(world.child("orders-green").is_none(), "no transition");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_edited_again_before_the_cutover_starts_over() -> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    world.awaiting_promotion("orders").await?;
    let first = world.child("orders-green").expect("the GREEN child");

    // v3 while the cutover to v2 waits: the cutover is aborted, GREEN (v2)
    // discarded, and GREEN comes back with v3.
    world.set_image("orders", "flink:2.0-v3").await?;
    let second = world
        .wait_for_child("orders-green", "recreated with v3", |c| {
            c["spec"]["image"] == "flink:2.0-v3"
        })
        .await?;
    assert_ne!(uid(&second), uid(&first));
    world
        .wait_for("orders", "awaiting promotion of v3", |r| {
            condition(r, "AwaitingPromotion")
        })
        .await?;
    world
        .annotate("orders", PROMOTE_ANNOTATION, Some("true"))
        .await?;
    world
        .wait_for("orders", "ACTIVE_GREEN", |r| state(r) == "ACTIVE_GREEN")
        .await?;
    world.wait_for_event("orders", "TemplateChanged").await?;
    let status = pipeline(&world, "orders").await?;
    assert_eq!(status.active, Colour::Green);
    assert_eq!(status.phase, Some(Phase::Completed));
    Ok(())
}
