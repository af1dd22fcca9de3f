//! The resource's status and the decisions' memory round-trip; `observe`
//! reads spec, annotation and children; `status_after` keeps condition
//! times while their status holds and reports the coordinator's view.

use cutover_controller::status_map::*;
use cutover_controller::*;
use cutover_core::{Colour, Epoch, Phase};
use cutover_crds::{
    BlueGreenState, ConfigurationError, FlinkBlueGreenDeployment, FlinkBlueGreenDeploymentSpec,
    GatesByColour,
};
use serde_json::json;

const NOW: i64 = 1_764_000_000;

fn resource() -> FlinkBlueGreenDeployment {
    let spec: FlinkBlueGreenDeploymentSpec = serde_json::from_value(json!({
        "template": {"spec": {"image": "orders:1", "job": {"jarURI": "local:///orders.jar"}}},
        "configuration": {"autoPromote": false, "abortGracePeriod": "90s"}
    }))
    .expect("spec");
    FlinkBlueGreenDeployment::new("orders", spec)
}

#[test]
fn memory_survives_the_status() {
    let memory = Memory {
        state: BlueGreenState::TransitioningToGreen,
        active_hash: Some("a".into()),
        target_hash: Some("b".into()),
        transition_started_at: Some(NOW - 30),
        initial_savepoint: Some("s3://sp/1".into()),
        rejected_hash: Some("c".into()),
        old_stopped_at: Some(NOW - 3_600),
    };
    let reconcile = Reconcile {
        actions: vec![],
        memory: memory.clone(),
        event: None,
        error: None,
        requeue_after: None,
    };
    let status = status_after(
        None,
        &reconcile,
        None,
        GatesByColour::default(),
        "b",
        Some(3),
        NOW,
    );
    assert_eq!(memory_from_status(Some(&status)), memory);
    assert_eq!(memory_from_status(None), Memory::default());
    assert_eq!(seconds(&rfc3339(NOW)), Some(NOW));
}

#[test]
fn observe_reads_the_spec_the_annotation_and_the_children() {
    let mut r = resource();
    let o = observe(&r, None, None, None, NOW).expect("valid");
    assert!(!o.auto_promote);
    assert_eq!(o.abort_grace_period.as_secs(), 90);
    assert!(!o.promote_requested);
    assert_eq!(o.memory, Memory::default());
    assert_eq!(o.desired_hash, child::template_hash(&r.spec.template));

    r.metadata.annotations = Some([(PROMOTE_ANNOTATION.to_string(), "green".to_string())].into());
    let blue = json!({
        "metadata": {"annotations": {child::TEMPLATE_HASH: "h1"}},
        "status": {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}}
    });
    let o = observe(&r, Some(&blue), None, None, NOW).expect("valid");
    assert!(o.promote_requested);
    assert_eq!(o.blue.map(|c| c.job), Some(JobHealth::Running));
    assert_eq!(o.green, None);

    r.spec.configuration.deletion_delay = "later".into();
    let error = observe(&r, None, None, None, NOW).expect_err("a bad duration");
    assert!(
        matches!(
            error,
            ConfigurationError::NotADuration {
                field: "deletionDelay",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("\"later\""), "{error}");
}

#[test]
fn conditions_follow_the_state_and_keep_their_times() {
    let transitioning = Reconcile {
        actions: vec![],
        memory: Memory {
            state: BlueGreenState::TransitioningToGreen,
            ..Memory::default()
        },
        event: None,
        error: Some("GREEN failed: OOM".into()),
        requeue_after: None,
    };
    let pipeline = PipelineView {
        epoch: Epoch(9),
        active: Colour::Blue,
        transition: Some(TransitionView {
            to: Colour::Green,
            phase: Phase::Scheduled,
            auto_promote: false,
        }),
    };
    let first = status_after(
        None,
        &transitioning,
        Some(&pipeline),
        GatesByColour::default(),
        "h2",
        Some(2),
        NOW,
    );
    assert_eq!(first.state, BlueGreenState::TransitioningToGreen);
    assert_eq!(first.active_colour.as_deref(), Some("BLUE"));
    assert_eq!(first.epoch, Some(9));
    assert_eq!(first.transition_phase.as_deref(), Some("SCHEDULED"));
    assert_eq!(first.last_error.as_deref(), Some("GREEN failed: OOM"));
    assert_eq!(first.observed_generation, Some(2));
    let condition = |s: &cutover_crds::FlinkBlueGreenDeploymentStatus, t: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| (c.status.clone(), c.last_transition_time.clone()))
            .expect("condition present")
    };
    assert_eq!(condition(&first, "Ready").0, "False");
    assert_eq!(condition(&first, "Transitioning").0, "True");
    assert_eq!(condition(&first, "AwaitingPromotion").0, "True");

    // Later, same state: times kept. Then active: Ready flips, with a new time.
    let later = status_after(
        Some(&first),
        &transitioning,
        Some(&pipeline),
        GatesByColour::default(),
        "h2",
        Some(2),
        NOW + 60,
    );
    assert_eq!(
        condition(&later, "Transitioning"),
        condition(&first, "Transitioning")
    );
    assert_eq!(condition(&first, "Reconciling").0, "True");
    assert_eq!(condition(&first, "Stalled").0, "False");
    let active = Reconcile {
        memory: Memory {
            state: BlueGreenState::ActiveGreen,
            active_hash: Some("h2".into()),
            ..Memory::default()
        },
        error: None,
        ..transitioning
    };
    let done = status_after(
        Some(&later),
        &active,
        None,
        GatesByColour::default(),
        "h2",
        Some(2),
        NOW + 120,
    );
    assert_eq!(
        condition(&done, "Ready"),
        ("True".to_string(), rfc3339(NOW + 120))
    );
    assert_eq!(condition(&done, "Transitioning").0, "False");
    assert_eq!(
        done.last_error, None,
        "an error clears on the next good step"
    );
    assert_eq!(condition(&done, "Reconciling").0, "False");
    assert_eq!(condition(&done, "Stalled").0, "False");
    assert_eq!(done.conditions.len(), 5);
    assert!(
        done.conditions
            .iter()
            .all(|c| c.observed_generation == Some(2)),
        "every condition names the generation it describes"
    );
}

fn condition_of<'a>(
    status: &'a cutover_crds::FlinkBlueGreenDeploymentStatus,
    type_: &str,
) -> &'a cutover_crds::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .expect("condition present")
}

#[test]
fn ready_means_the_spec_template_runs_and_stalled_means_it_never_will() {
    let active_on = |active: &str, rejected: Option<&str>| Reconcile {
        actions: vec![],
        memory: Memory {
            state: BlueGreenState::ActiveBlue,
            active_hash: Some(active.into()),
            rejected_hash: rejected.map(Into::into),
            ..Memory::default()
        },
        event: None,
        error: rejected.map(|h| format!("template {h} failed in GREEN and was rolled back")),
        requeue_after: None,
    };
    let gates = GatesByColour::default();
    // (active template, rejected template, spec's template) -> Ready, Reconciling, Stalled
    let table = [
        (("h1", None), "h1", ("True", "False", "False")),
        (("h1", None), "h2", ("False", "True", "False")),
        (("h1", Some("h2")), "h2", ("False", "False", "True")),
        (("h1", Some("h2")), "h3", ("False", "True", "False")),
    ];
    for ((active, rejected), desired, (ready, reconciling, stalled)) in table {
        let status = status_after(
            None,
            &active_on(active, rejected),
            None,
            gates,
            desired,
            Some(4),
            NOW,
        );
        let row = format!("{active} {rejected:?} {desired}");
        assert_eq!(condition_of(&status, "Ready").status, ready, "{row}");
        assert_eq!(
            condition_of(&status, "Reconciling").status,
            reconciling,
            "{row}"
        );
        assert_eq!(condition_of(&status, "Stalled").status, stalled, "{row}");
    }
    let rejected = status_after(
        None,
        &active_on("h1", Some("h2")),
        None,
        gates,
        "h2",
        Some(4),
        NOW,
    );
    assert_eq!(
        condition_of(&rejected, "Stalled").reason,
        "TemplateRejected"
    );
    assert!(
        condition_of(&rejected, "Stalled")
            .message
            .contains("rolled back")
    );
}

#[test]
fn an_invalid_spec_is_observed_and_stalled_with_the_rest_kept() {
    let previous = status_after(
        None,
        &Reconcile {
            actions: vec![],
            memory: Memory {
                state: BlueGreenState::ActiveBlue,
                active_hash: Some("h1".into()),
                ..Memory::default()
            },
            event: None,
            error: None,
            requeue_after: None,
        },
        None,
        GatesByColour::default(),
        "h1",
        Some(1),
        NOW,
    );
    let message = "spec.configuration.deletionDelay: \"later\" is not a duration";
    let stalled = status_after_invalid_spec(Some(&previous), message, Some(2), NOW + 5);
    assert_eq!(stalled.state, BlueGreenState::ActiveBlue);
    assert_eq!(stalled.active_template_hash.as_deref(), Some("h1"));
    assert_eq!(stalled.observed_generation, Some(2));
    assert_eq!(stalled.last_error.as_deref(), Some(message));
    assert_eq!(condition_of(&stalled, "Ready").status, "False");
    assert_eq!(condition_of(&stalled, "Stalled").status, "True");
    assert_eq!(condition_of(&stalled, "Stalled").message, message);
    assert_eq!(condition_of(&stalled, "Reconciling").status, "False");
    assert_eq!(
        condition_of(&stalled, "Ready").last_transition_time,
        rfc3339(NOW + 5)
    );
}
