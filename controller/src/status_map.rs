//! Between the resource and the decisions: [`observe`] turns a
//! FlinkBlueGreenDeployment, its children and the coordinator's view into
//! [`Observed`]; [`status_after`] turns a [`Reconcile`] back into the
//! resource's status (state, colour, epoch, phase, conditions, error).
//! Times are seconds since the Unix epoch here and RFC 3339 in the status.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cutover_core::{Colour, Phase, PipelineStatus};
use cutover_crds::{
    BlueGreenState, ColourGates, Condition, ConfigurationError, FlinkBlueGreenDeployment,
    FlinkBlueGreenDeploymentStatus, GatesByColour,
};
use serde_json::Value;

use crate::action::Reconcile;
use crate::child::{observe_child, template_hash};
use crate::observed::{Memory, Observed, PipelineView};

/// Annotation asking for the promotion of a transition waiting for one.
pub const PROMOTE_ANNOTATION: &str = "cutover.dev/promote";

/// Annotation asking to abort the running transition while it is still
/// revocable (the new colour is discarded and its template not tried again
/// until it changes).
pub const ABORT_ANNOTATION: &str = "cutover.dev/abort";

/// Seconds since the Unix epoch as RFC 3339.
pub fn rfc3339(seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// RFC 3339 as seconds since the Unix epoch (`None` if unreadable).
pub fn seconds(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_secs()).ok()
}

/// Seconds since the Unix epoch of a clock reading (for the edge).
pub fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What the status remembers, as the decisions need it.
pub fn memory_from_status(status: Option<&FlinkBlueGreenDeploymentStatus>) -> Memory {
    let Some(status) = status else {
        return Memory::default();
    };
    Memory {
        state: status.state,
        active_hash: status.active_template_hash.clone(),
        target_hash: status.target_template_hash.clone(),
        transition_started_at: status.transition_started_at.as_deref().and_then(seconds),
        initial_savepoint: status.initial_savepoint.clone(),
        old_stopped_at: status.old_colour_stopped_at.as_deref().and_then(seconds),
        rejected_hash: status.rejected_template_hash.clone(),
    }
}

/// Per-colour gate counts for the resource's status.
pub fn gates_by_colour(status: Option<&PipelineStatus>) -> GatesByColour {
    let counts = |colour: Colour| {
        let g = status.map(|s| *s.gates(colour)).unwrap_or_default();
        ColourGates {
            expected: g.expected,
            connected: g.connected,
            acked: g.acked,
        }
    };
    GatesByColour {
        blue: counts(Colour::Blue),
        green: counts(Colour::Green),
    }
}

/// Everything [`crate::decide`] needs about `resource` now; a bad
/// configuration is an error naming the field.
pub fn observe(
    resource: &FlinkBlueGreenDeployment,
    blue: Option<&Value>,
    green: Option<&Value>,
    pipeline: Option<PipelineView>,
    now: i64,
) -> Result<Observed, ConfigurationError> {
    let configuration = &resource.spec.configuration;
    let durations = configuration.validate()?;
    resource.spec.placement.validate()?;
    let annotated = |key: &str| {
        resource
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(key))
    };
    let promote_requested = annotated(PROMOTE_ANNOTATION);
    let abort_requested = annotated(ABORT_ANNOTATION);
    Ok(Observed {
        now,
        desired_hash: template_hash(&resource.spec.template),
        suspend: resource.spec.suspend,
        auto_promote: configuration.auto_promote,
        abort_grace_period: durations.abort_grace_period,
        deletion_delay: durations.deletion_delay,
        promote_requested,
        abort_requested,
        memory: memory_from_status(resource.status.as_ref()),
        blue: blue.map(observe_child),
        green: green.map(observe_child),
        pipeline,
    })
}

fn is_transitioning(state: BlueGreenState) -> bool {
    matches!(
        state,
        BlueGreenState::SavepointingBlue
            | BlueGreenState::SavepointingGreen
            | BlueGreenState::TransitioningToBlue
            | BlueGreenState::TransitioningToGreen
    )
}

/// Sets condition `type_` to `status`, keeping its transition time when the
/// status did not change.
fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    now: i64,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let previous = conditions.iter().position(|c| c.type_ == type_);
    let last_transition_time = match previous.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => rfc3339(now),
    };
    let condition = Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message,
        last_transition_time,
        observed_generation: generation,
    };
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// The status after `reconcile`: its memory, the coordinator's view, the
/// gate counts, and the conditions: `Ready` (a colour is active and runs
/// the template the spec asks for: what `kubectl wait
/// --for=condition=Ready` waits for), `Reconciling` and `Stalled` (as
/// kstatus reads them: work under way, or stuck until the spec changes),
/// `Transitioning` and `AwaitingPromotion`. `desired_hash` is the hash of
/// the spec's template.
pub fn status_after(
    previous: Option<&FlinkBlueGreenDeploymentStatus>,
    reconcile: &Reconcile,
    pipeline: Option<&PipelineView>,
    gates: GatesByColour,
    desired_hash: &str,
    generation: Option<i64>,
    now: i64,
) -> FlinkBlueGreenDeploymentStatus {
    let m = &reconcile.memory;
    let mut conditions = previous.map(|p| p.conditions.clone()).unwrap_or_default();
    let active = matches!(
        m.state,
        BlueGreenState::ActiveBlue | BlueGreenState::ActiveGreen
    );
    let ready = active && m.active_hash.as_deref() == Some(desired_hash);
    let stalled = m.rejected_hash.as_deref() == Some(desired_hash);
    let (reason, message) = if ready {
        ("Active", format!("{:?} runs the current template", m.state))
    } else if stalled {
        (
            "TemplateRejected",
            reconcile
                .error
                .clone()
                .unwrap_or_else(|| "the template was rolled back".into()),
        )
    } else {
        ("Progressing", format!("{:?}", m.state))
    };
    let mut set = |type_: &str, status: bool, reason: &str, message: String| {
        set_condition(
            &mut conditions,
            type_,
            status,
            reason,
            message,
            now,
            generation,
        )
    };
    set(
        "Ready",
        ready,
        if ready { "Active" } else { reason },
        message.clone(),
    );
    let reconciling = !ready && !stalled;
    set(
        "Reconciling",
        reconciling,
        if reconciling { reason } else { "Settled" },
        if reconciling {
            message.clone()
        } else {
            String::new()
        },
    );
    set(
        "Stalled",
        stalled,
        if stalled { reason } else { "NotStalled" },
        if stalled { message } else { String::new() },
    );
    let transitioning = is_transitioning(m.state);
    set(
        "Transitioning",
        transitioning,
        if transitioning { "InProgress" } else { "Idle" },
        pipeline.and_then(|p| p.transition).map_or_else(
            || "no transition".into(),
            |t| format!("to {}: {}", t.to, t.phase),
        ),
    );
    let waiting = transitioning
        && pipeline
            .and_then(|p| p.transition)
            .is_some_and(|t| t.phase == Phase::Scheduled && !t.auto_promote);
    set(
        "AwaitingPromotion",
        waiting,
        if waiting {
            "PromoteRequired"
        } else {
            "NotWaiting"
        },
        if waiting {
            format!("annotate with {PROMOTE_ANNOTATION} to promote")
        } else {
            String::new()
        },
    );
    FlinkBlueGreenDeploymentStatus {
        state: m.state,
        active_colour: pipeline.map(|p| p.active.to_string()),
        epoch: pipeline.map(|p| p.epoch.0),
        transition_phase: pipeline
            .and_then(|p| p.transition)
            .map(|t| t.phase.to_string()),
        gates,
        active_template_hash: m.active_hash.clone(),
        target_template_hash: m.target_hash.clone(),
        rejected_template_hash: m.rejected_hash.clone(),
        old_colour_stopped_at: m.old_stopped_at.map(rfc3339),
        transition_started_at: m.transition_started_at.map(rfc3339),
        initial_savepoint: m.initial_savepoint.clone(),
        conditions,
        last_error: reconcile.error.clone(),
        observed_generation: generation,
    }
}

/// The status when the spec cannot be acted on (`message` says why: a
/// configuration field that is wrong): everything else kept, the spec's
/// `generation` observed, `Stalled` until the spec changes, not `Ready`.
pub fn status_after_invalid_spec(
    previous: Option<&FlinkBlueGreenDeploymentStatus>,
    message: &str,
    generation: Option<i64>,
    now: i64,
) -> FlinkBlueGreenDeploymentStatus {
    let mut status = previous.cloned().unwrap_or_default();
    for (type_, value, reason) in [
        ("Ready", false, "InvalidSpec"),
        ("Reconciling", false, "Settled"),
        ("Stalled", true, "InvalidSpec"),
    ] {
        let message = if value || type_ == "Ready" {
            message.to_string()
        } else {
            String::new()
        };
        set_condition(
            &mut status.conditions,
            type_,
            value,
            reason,
            message,
            now,
            generation,
        );
    }
    status.last_error = Some(message.to_string());
    status.observed_generation = generation;
    status
}
