//! `kubectl cutover promote | abort | rollback NAME`: each checks that the
//! resource is in a state where the request makes sense (and says why not,
//! changing nothing), then asks the controller through the resource.

use std::process::ExitCode;

use anyhow::Context;
use cutover_controller::child::{TEMPLATE_ANNOTATION, child_name};
use cutover_controller::status_map::{ABORT_ANNOTATION, PROMOTE_ANNOTATION};
use cutover_core::Colour;
use cutover_crds::{BlueGreenState, FlinkDeploymentTemplate};
use kube::api::{Patch, PatchParams, PostParams};

use super::Target;
use super::resource::{Found, find};

/// The resource's state and its transition's phase (as the controller last
/// wrote them).
fn state_of(found: &Found) -> (BlueGreenState, Option<String>) {
    let status = found.resource.status.clone().unwrap_or_default();
    (status.state, status.transition_phase)
}

fn in_transition(state: BlueGreenState) -> Option<(Colour, Colour)> {
    match state {
        BlueGreenState::SavepointingBlue | BlueGreenState::TransitioningToGreen => {
            Some((Colour::Blue, Colour::Green))
        }
        BlueGreenState::SavepointingGreen | BlueGreenState::TransitioningToBlue => {
            Some((Colour::Green, Colour::Blue))
        }
        _ => None,
    }
}

/// Whether a transition in `phase` can still be aborted.
fn revocable(phase: Option<&str>) -> bool {
    matches!(phase, None | Some("SCHEDULED" | "ABORTED"))
}

fn refuse(message: String) -> anyhow::Result<ExitCode> {
    eprintln!("refused: {message}");
    Ok(ExitCode::FAILURE)
}

async fn annotate(found: &Found, name: &str, key: &str) -> anyhow::Result<()> {
    let patch = serde_json::json!({"metadata": {"annotations": {key: "true"}}});
    found
        .resources
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotating FlinkBlueGreenDeployment {name}"))?;
    Ok(())
}

pub(super) async fn promote(target: &Target) -> anyhow::Result<ExitCode> {
    let found = find(target).await?;
    let (state, phase) = state_of(&found);
    let waiting = found.resource.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "AwaitingPromotion" && c.status == "True")
    });
    if !waiting {
        return refuse(format!(
            "{} does not wait for a promotion ({state:?}, transition {}); only a cutover with autoPromote: false does",
            target.name,
            phase.as_deref().unwrap_or("none")
        ));
    }
    annotate(&found, &target.name, PROMOTE_ANNOTATION).await?;
    println!(
        "asked the controller to promote {} ({PROMOTE_ANNOTATION}): the cutover becomes irrevocable",
        target.name
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn abort(target: &Target) -> anyhow::Result<ExitCode> {
    let found = find(target).await?;
    let (state, phase) = state_of(&found);
    let Some((old, new)) = in_transition(state) else {
        return refuse(format!(
            "{} runs no transition ({state:?}); nothing to abort",
            target.name
        ));
    };
    if !revocable(phase.as_deref()) {
        return refuse(format!(
            "the cutover from {old} to {new} is irrevocable ({}): {new} already emits the keys from the cutover on. Let it complete; `kubectl cutover rollback {}` then returns to the previous template while {} is kept",
            phase.as_deref().unwrap_or("?"),
            target.name,
            child_name(&target.name, old)
        ));
    }
    annotate(&found, &target.name, ABORT_ANNOTATION).await?;
    println!(
        "asked the controller to abort the transition to {new} ({ABORT_ANNOTATION}): {} is deleted, {old} keeps emitting, and this template is not tried again until it changes",
        child_name(&target.name, new)
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn rollback(target: &Target) -> anyhow::Result<ExitCode> {
    let found = find(target).await?;
    let (state, phase) = state_of(&found);
    if in_transition(state).is_some() {
        if revocable(phase.as_deref()) {
            println!("the transition is not yet irrevocable: rolling back is aborting it");
            return abort(target).await;
        }
        return refuse(format!(
            "a transition is under way and irrevocable ({}); once it completes, rollback returns to the previous template",
            phase.as_deref().unwrap_or("?")
        ));
    }
    let active = match state {
        BlueGreenState::ActiveBlue => Colour::Blue,
        BlueGreenState::ActiveGreen => Colour::Green,
        other => {
            return refuse(format!(
                "{} has no previous colour to return to ({other:?})",
                target.name
            ));
        }
    };
    let previous = active.other();
    let previous_child = child_name(&target.name, previous);
    let Some(child) = found.child(previous) else {
        return refuse(format!(
            "{previous_child} is gone (deleted after deletionDelay): there is no previous template to return to; edit spec.template instead"
        ));
    };
    let Some(text) = child["metadata"]["annotations"][TEMPLATE_ANNOTATION].as_str() else {
        return refuse(format!(
            "{previous_child} does not record its template ({TEMPLATE_ANNOTATION}); edit spec.template instead"
        ));
    };
    let template: FlinkDeploymentTemplate = serde_json::from_str(text)
        .with_context(|| format!("reading the template {previous_child} records"))?;
    let mut resource = found.resource.clone();
    resource.spec.template = template;
    found
        .resources
        .replace(&target.name, &PostParams::default(), &resource)
        .await
        .with_context(|| format!("setting {}'s spec.template", target.name))?;
    println!(
        "spec.template set back to the template {previous_child} ran: the controller starts {previous} from {active}'s savepoint and cuts over to it (`kubectl cutover status {}` follows it)",
        target.name
    );
    Ok(ExitCode::SUCCESS)
}
