//! [`plan_change`]: what the controller would do if a resource's spec were
//! replaced by another, step by step, without doing any of it (what
//! `kubectl cutover plan` prints). It follows the same rules as
//! [`crate::decide`]: a template change starts the other colour from the
//! active one's savepoint, cuts over at EARLIEST, drains, stops and later
//! deletes the old colour; a spec the controller cannot act on is refused
//! with the reason.

use cutover_core::{Colour, Phase, PipelineStatus};
use cutover_crds::{BlueGreenState, FlinkBlueGreenDeployment, FlinkBlueGreenDeploymentSpec};
use serde::Serialize;
use serde_json::Value;

use crate::child::{child_name, observe_child, template_hash};
use crate::status_map::memory_from_status;

/// One step the controller would take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    /// What happens.
    pub what: String,
    /// Whether `kubectl cutover abort` can still undo the transition at
    /// this step (nothing emitted twice, nothing lost).
    pub abortable: bool,
}

/// The controller's plan for a spec change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChangePlan {
    /// Why the new spec would be refused (nothing else is done), if it is.
    pub refused: Option<String>,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
    /// Remarks: what changes without a step, what the plan assumes.
    pub notes: Vec<String>,
}

impl ChangePlan {
    fn step(&mut self, abortable: bool, what: impl Into<String>) {
        self.steps.push(PlannedStep {
            what: what.into(),
            abortable,
        });
    }

    fn refuse(reason: impl Into<String>) -> Self {
        ChangePlan {
            refused: Some(reason.into()),
            ..ChangePlan::default()
        }
    }

    /// Until when the transition can be aborted, for people.
    pub fn abortable_until(&self) -> Option<&str> {
        let last = self.steps.iter().rposition(|s| s.abortable)?;
        self.steps.get(last + 1).map(|s| s.what.as_str())
    }
}

/// The coordinator's figures the plan uses, when it could be asked.
#[derive(Clone, Debug, Default)]
pub struct LiveFigures {
    /// The pipeline's status.
    pub status: Option<PipelineStatus>,
}

/// What the controller would do for `resource` (with its children
/// `blue` and `green` as stored) if its spec became `next`.
pub fn plan_change(
    resource: &FlinkBlueGreenDeployment,
    next: &FlinkBlueGreenDeploymentSpec,
    blue: Option<&Value>,
    green: Option<&Value>,
    live: &LiveFigures,
) -> ChangePlan {
    let durations = match next.configuration.validate() {
        Ok(d) => d,
        Err(e) => return ChangePlan::refuse(e.to_string()),
    };
    if let Err(e) = next.placement.validate() {
        return ChangePlan::refuse(e.to_string());
    }
    let name = resource.metadata.name.as_deref().unwrap_or("?");
    let memory = memory_from_status(resource.status.as_ref());
    let hash = template_hash(&next.template);
    let child = |colour: Colour| match colour {
        Colour::Blue => blue.map(observe_child),
        Colour::Green => green.map(observe_child),
    };
    let mut plan = ChangePlan::default();
    note_configuration(&mut plan, &resource.spec, next);
    let (active, other) = match memory.state {
        BlueGreenState::InitializingBlue => {
            plan.step(
                false,
                format!(
                    "create {} from the template (hash {hash}); BLUE emits every record, no cutover is needed",
                    child_name(name, Colour::Blue)
                ),
            );
            return plan;
        }
        BlueGreenState::ActiveBlue | BlueGreenState::SavepointingBlue => {
            (Colour::Blue, Colour::Green)
        }
        BlueGreenState::ActiveGreen | BlueGreenState::SavepointingGreen => {
            (Colour::Green, Colour::Blue)
        }
        BlueGreenState::TransitioningToGreen => (Colour::Blue, Colour::Green),
        BlueGreenState::TransitioningToBlue => (Colour::Green, Colour::Blue),
    };
    let transitioning = matches!(
        memory.state,
        BlueGreenState::TransitioningToBlue
            | BlueGreenState::TransitioningToGreen
            | BlueGreenState::SavepointingBlue
            | BlueGreenState::SavepointingGreen
    );
    // From which colour a new transition would start.
    let mut from = active;
    if transitioning {
        if memory.target_hash.as_deref() == Some(hash.as_str()) {
            plan.notes.push(format!(
                "the running transition to {other} already runs this template: nothing changes"
            ));
            return plan;
        }
        let phase = live
            .status
            .as_ref()
            .and_then(|s| s.transition.as_ref().filter(|t| t.to == other).and(s.phase));
        let revocable = matches!(phase, None | Some(Phase::Scheduled | Phase::Aborted));
        if revocable {
            plan.step(
                true,
                format!(
                    "abort the running transition to {other} (not yet irrevocable) and delete {}",
                    child_name(name, other)
                ),
            );
        } else {
            let phase = phase.map_or_else(String::new, |p| p.to_string());
            plan.step(
                false,
                format!(
                    "let the running transition to {other} complete ({phase}: irrevocable); {other} becomes active"
                ),
            );
            from = other;
        }
    } else if memory.active_hash.as_deref() == Some(hash.as_str()) {
        if next.suspend != resource.spec.suspend {
            let what = if next.suspend {
                format!(
                    "suspend {} with a savepoint; no transition until resumed",
                    child_name(name, active)
                )
            } else {
                format!("resume {} from its savepoint", child_name(name, active))
            };
            plan.step(false, what);
        } else {
            plan.notes
                .push("the template is unchanged: no child is touched".into());
        }
        return plan;
    }
    if memory.rejected_hash.as_deref() == Some(hash.as_str()) {
        return ChangePlan::refuse(format!(
            "template {hash} failed in {} and was rolled back; it is not tried again until spec.template changes",
            from.other()
        ));
    }
    if next.suspend {
        plan.step(
            false,
            format!(
                "suspend {} with a savepoint; the new template waits until the resource is resumed",
                child_name(name, from)
            ),
        );
        return plan;
    }
    let to = from.other();
    let (from_child, to_child) = (child_name(name, from), child_name(name, to));
    match child(from).and_then(|c| c.savepoint) {
        Some(savepoint) if from == active => plan.step(
            true,
            format!("start from {from_child}'s latest savepoint or checkpoint {savepoint} ({from} keeps emitting)"),
        ),
        _ => plan.step(
            true,
            format!("take a savepoint of {from_child} ({from} keeps emitting meanwhile)"),
        ),
    }
    plan.step(
        true,
        format!(
            "create {to_child} from the new template (hash {hash}) starting from that savepoint (upgradeMode savepoint)"
        ),
    );
    plan.step(
        true,
        format!(
            "wait until {to} is RUNNING and STABLE, at most abortGracePeriod ({}): if it fails or is late, {to_child} is deleted, {from} keeps emitting, and this template is not tried again until it changes",
            humantime::format_duration(durations.abort_grace_period)
        ),
    );
    let window = humantime::format_duration(durations.horizon_window);
    let key = live
        .status
        .as_ref()
        .map(|s| s.gates(from).highest_watermark)
        .filter(|w| w.0 > i64::MIN)
        .map(|w| {
            let lead = i64::try_from(durations.horizon_window.as_millis()).unwrap_or(i64::MAX);
            format!(
                " (now about key {}: {from}'s highest gate watermark {} + {window})",
                w.0.saturating_add(lead),
                w.0
            )
        })
        .unwrap_or_default();
    plan.step(
        true,
        format!(
            "schedule the cutover {from} -> {to} at EARLIEST: the key is the highest gate watermark plus horizonWindow ({window}), so {to} has {window} of event time to catch up{key}"
        ),
    );
    if !next.configuration.auto_promote {
        plan.step(
            true,
            format!("wait for a promotion (`kubectl cutover promote {name}`): the horizon stays below the key"),
        );
    }
    plan.step(
        false,
        format!(
            "the cutover becomes irrevocable once the horizon passes the key{}: from then on {to} emits every key from it, {from} every key below",
            if next.configuration.auto_promote { "" } else { " (at the promotion)" }
        ),
    );
    plan.step(
        false,
        format!(
            "DRAINED: every {from} gate is past the key + allowedLateness ({})",
            humantime::format_duration(durations.allowed_lateness)
        ),
    );
    plan.step(
        false,
        format!("stop {from_child} with a savepoint (kept, suspended)"),
    );
    plan.step(
        false,
        format!(
            "delete {from_child} deletionDelay ({}) after it stopped; until then `kubectl cutover rollback {name}` returns to the template it ran",
            humantime::format_duration(durations.deletion_delay)
        ),
    );
    plan
}

/// Notes on configuration fields that change without a step of their own.
fn note_configuration(
    plan: &mut ChangePlan,
    current: &FlinkBlueGreenDeploymentSpec,
    next: &FlinkBlueGreenDeploymentSpec,
) {
    let (a, b) = (&current.configuration, &next.configuration);
    let changed: Vec<&str> = [
        (
            "abortGracePeriod",
            a.abort_grace_period != b.abort_grace_period,
        ),
        ("deletionDelay", a.deletion_delay != b.deletion_delay),
        ("horizonWindow", a.horizon_window != b.horizon_window),
        ("allowedLateness", a.allowed_lateness != b.allowed_lateness),
        ("decisionMode", a.decision_mode != b.decision_mode),
        ("autoPromote", a.auto_promote != b.auto_promote),
        ("coordinator", a.coordinator != b.coordinator),
    ]
    .into_iter()
    .filter_map(|(field, changed)| changed.then_some(field))
    .collect();
    if !changed.is_empty() {
        plan.notes.push(format!(
            "spec.configuration changes ({}) apply from the controller's next step",
            changed.join(", ")
        ));
    }
    if a.coordinator != b.coordinator {
        plan.notes.push(
            "a new coordinator address reaches only children created from now on (running jobs keep theirs)"
                .into(),
        );
    }
    if current.placement != next.placement {
        plan.notes
            .push("spec.placement applies to children created from now on".into());
    }
}
