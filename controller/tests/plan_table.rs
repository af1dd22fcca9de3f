//! `plan_change`: the steps `kubectl cutover plan` prints for a spec change,
//! from each state the resource can be in, and the refusals.

use cutover_controller::child::{TEMPLATE_HASH, template_hash};
use cutover_controller::plan::{ChangePlan, LiveFigures, plan_change};
use cutover_core::{
    Colour, ColourGates, Epoch, HorizonPolicy, Incarnation, Key, Mode, Phase, PipelineDoc,
    PipelineName, PipelineState, Transition, TransitionState, UnknownFields,
};
use cutover_crds::{
    BlueGreenState, FlinkBlueGreenDeployment, FlinkBlueGreenDeploymentSpec,
    FlinkBlueGreenDeploymentStatus,
};
use serde_json::{Value, json};

fn spec(image: &str, configuration: Value) -> FlinkBlueGreenDeploymentSpec {
    serde_json::from_value(json!({
        "template": {"spec": {"image": image, "job": {"jarURI": "local:///orders.jar"}}},
        "configuration": configuration,
    }))
    .expect("spec")
}

fn resource(state: BlueGreenState, active: &str, target: Option<&str>) -> FlinkBlueGreenDeployment {
    let mut r = FlinkBlueGreenDeployment::new("orders", spec(active, json!({})));
    r.status = Some(FlinkBlueGreenDeploymentStatus {
        state,
        active_template_hash: Some(template_hash(&spec(active, json!({})).template)),
        target_template_hash: target.map(|t| template_hash(&spec(t, json!({})).template)),
        ..FlinkBlueGreenDeploymentStatus::default()
    });
    r
}

fn child(image: &str, savepoint: Option<&str>) -> Value {
    json!({
        "metadata": {"annotations": {TEMPLATE_HASH: template_hash(&spec(image, json!({})).template)}},
        "status": {
            "lifecycleState": "STABLE",
            "jobStatus": {"state": "RUNNING", "upgradeSavepointPath": savepoint},
        },
    })
}

fn steps(plan: &ChangePlan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.what.as_str()).collect()
}

fn live(phase: Option<Phase>, to: Colour, highest_blue: i64) -> LiveFigures {
    let doc = PipelineDoc::new(
        PipelineName::new("default-orders").expect("name"),
        Colour::Blue,
        HorizonPolicy::with_window(10_000),
        Incarnation(1),
    );
    let mut status = PipelineState::new(doc).status();
    status.blue = ColourGates {
        highest_watermark: Key(highest_blue),
        ..ColourGates::default()
    };
    status.phase = phase;
    status.transition = phase.map(|_| Transition {
        id: Epoch(2),
        from: to.other(),
        to,
        at: Key(5_000),
        mode: Mode::EventTime,
        allowed_lateness: 0,
        auto_promote: false,
        promoted: false,
        state: TransitionState::Pending,
        unknown: UnknownFields::new(),
    });
    LiveFigures {
        status: Some(status),
    }
}

#[test]
fn a_new_template_on_an_active_colour_runs_the_whole_transition() {
    let r = resource(BlueGreenState::ActiveBlue, "v1", None);
    let next = spec("v2", json!({"autoPromote": false}));
    let blue = child("v1", Some("s3://sp/1"));
    let plan = plan_change(&r, &next, Some(&blue), None, &LiveFigures::default());
    assert_eq!(plan.refused, None);
    let steps = steps(&plan);
    assert!(
        steps[0].contains("orders-blue's latest savepoint or checkpoint s3://sp/1"),
        "{steps:#?}"
    );
    assert!(
        steps[1].starts_with("create orders-green from the new template"),
        "{steps:#?}"
    );
    assert!(steps[2].contains("abortGracePeriod (10m)"), "{steps:#?}");
    assert!(
        steps[3].contains("cutover BLUE -> GREEN at EARLIEST"),
        "{steps:#?}"
    );
    assert!(steps[3].contains("horizonWindow (10s)"), "{steps:#?}");
    assert!(
        steps[4].contains("kubectl cutover promote orders"),
        "{steps:#?}"
    );
    assert!(steps[5].contains("irrevocable"), "{steps:#?}");
    assert!(steps[6].starts_with("DRAINED"), "{steps:#?}");
    assert!(
        steps[7].contains("stop orders-blue with a savepoint"),
        "{steps:#?}"
    );
    assert!(steps[8].contains("deletionDelay (5m)"), "{steps:#?}");
    assert_eq!(steps.len(), 9);
    assert!(
        plan.abortable_until()
            .is_some_and(|s| s.contains("irrevocable")),
        "{plan:?}"
    );

    // No savepoint yet: one is taken first. Auto-promoted: no promotion step.
    let plan = plan_change(
        &r,
        &spec("v2", json!({})),
        Some(&child("v1", None)),
        None,
        &LiveFigures::default(),
    );
    let steps = self::steps(&plan);
    assert!(
        steps[0].starts_with("take a savepoint of orders-blue"),
        "{steps:#?}"
    );
    assert!(!steps.iter().any(|s| s.contains("promote")), "{steps:#?}");
}

#[test]
fn the_coordinator_figures_give_the_expected_key() {
    let r = resource(BlueGreenState::ActiveBlue, "v1", None);
    let figures = live(None, Colour::Green, 1_700_000_000_000);
    let plan = plan_change(&r, &spec("v2", json!({})), None, None, &figures);
    let schedule = plan
        .steps
        .iter()
        .find(|s| s.what.contains("EARLIEST"))
        .expect("a cutover step");
    assert!(
        schedule.what.contains(
            "now about key 1700000010000: BLUE's highest gate watermark 1700000000000 + 10s"
        ),
        "{schedule:?}"
    );
}

#[test]
fn nothing_to_do_and_refusals() {
    let r = resource(BlueGreenState::ActiveBlue, "v1", None);
    let same = plan_change(
        &r,
        &spec("v1", json!({"deletionDelay": "1h"})),
        None,
        None,
        &LiveFigures::default(),
    );
    assert!(same.steps.is_empty(), "{same:?}");
    assert!(
        same.notes.iter().any(|n| n.contains("unchanged")),
        "{same:?}"
    );
    assert!(
        same.notes.iter().any(|n| n.contains("deletionDelay")),
        "{same:?}"
    );

    let bad = plan_change(
        &r,
        &spec("v2", json!({"horizonWindow": "0s"})),
        None,
        None,
        &LiveFigures::default(),
    );
    assert!(
        bad.refused
            .as_deref()
            .is_some_and(|e| e.contains("horizonWindow")),
        "{bad:?}"
    );
    assert!(bad.steps.is_empty());

    let mut rejected = resource(BlueGreenState::ActiveBlue, "v1", None);
    if let Some(status) = rejected.status.as_mut() {
        status.rejected_template_hash = Some(template_hash(&spec("v2", json!({})).template));
    }
    let refused = plan_change(
        &rejected,
        &spec("v2", json!({})),
        None,
        None,
        &LiveFigures::default(),
    );
    assert!(
        refused
            .refused
            .as_deref()
            .is_some_and(|e| e.contains("rolled back")),
        "{refused:?}"
    );

    let suspend = plan_change(
        &r,
        &FlinkBlueGreenDeploymentSpec {
            suspend: true,
            ..spec("v1", json!({}))
        },
        None,
        None,
        &LiveFigures::default(),
    );
    assert!(
        steps(&suspend)[0].starts_with("suspend orders-blue"),
        "{suspend:?}"
    );
}

#[test]
fn a_change_during_a_transition_aborts_it_or_waits_for_it() {
    let r = resource(BlueGreenState::TransitioningToGreen, "v1", Some("v2"));
    let same = plan_change(
        &r,
        &spec("v2", json!({})),
        None,
        None,
        &LiveFigures::default(),
    );
    assert!(same.steps.is_empty(), "{same:?}");

    let scheduled = live(Some(Phase::Scheduled), Colour::Green, 0);
    let plan = plan_change(&r, &spec("v3", json!({})), None, None, &scheduled);
    let s = steps(&plan);
    assert!(
        s[0].starts_with("abort the running transition to GREEN"),
        "{s:#?}"
    );
    assert!(
        s[1].starts_with("take a savepoint of orders-blue"),
        "{s:#?}"
    );
    assert!(s[2].starts_with("create orders-green"), "{s:#?}");

    let cutting = live(Some(Phase::CuttingOver), Colour::Green, 0);
    let plan = plan_change(&r, &spec("v3", json!({})), None, None, &cutting);
    let s = steps(&plan);
    assert!(
        s[0].contains("complete (CUTTING_OVER: irrevocable)"),
        "{s:#?}"
    );
    assert!(!plan.steps[0].abortable);
    assert!(
        s[1].starts_with("take a savepoint of orders-green"),
        "{s:#?}"
    );
    assert!(s[2].starts_with("create orders-blue"), "{s:#?}");
    assert!(
        s.iter().any(|x| x.contains("cutover GREEN -> BLUE")),
        "{s:#?}"
    );
}

#[test]
fn a_new_resource_creates_blue() {
    let r = FlinkBlueGreenDeployment::new("orders", spec("v1", json!({})));
    let plan = plan_change(
        &r,
        &spec("v1", json!({})),
        None,
        None,
        &LiveFigures::default(),
    );
    assert!(
        steps(&plan)[0].starts_with("create orders-blue"),
        "{plan:?}"
    );
    assert_eq!(plan.steps.len(), 1);
}
