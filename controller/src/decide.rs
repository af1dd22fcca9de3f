//! [`decide`]: observed state → actions and what to remember.

use std::time::Duration;

use cutover_core::{Colour, Phase};
use cutover_crds::BlueGreenState;

use crate::action::{Action, Reconcile};
use crate::observed::{JobHealth, Memory, Observed};

/// How soon to look again while waiting on a child or the coordinator.
pub const POLL: Duration = Duration::from_secs(5);

fn active_state(colour: Colour) -> BlueGreenState {
    match colour {
        Colour::Blue => BlueGreenState::ActiveBlue,
        Colour::Green => BlueGreenState::ActiveGreen,
    }
}

fn transitioning_state(to: Colour) -> BlueGreenState {
    match to {
        Colour::Blue => BlueGreenState::TransitioningToBlue,
        Colour::Green => BlueGreenState::TransitioningToGreen,
    }
}

fn savepointing_state(from: Colour) -> BlueGreenState {
    match from {
        Colour::Blue => BlueGreenState::SavepointingBlue,
        Colour::Green => BlueGreenState::SavepointingGreen,
    }
}

/// The colour owning the timeline's end in `state` once its transition
/// (if any) is settled: the active or old colour.
pub fn settled_colour(state: BlueGreenState) -> Colour {
    colours(state).0
}

/// The colour a state is about: (active or old colour, colour being started).
fn colours(state: BlueGreenState) -> (Colour, Colour) {
    match state {
        BlueGreenState::InitializingBlue
        | BlueGreenState::ActiveBlue
        | BlueGreenState::SavepointingBlue
        | BlueGreenState::TransitioningToGreen => (Colour::Blue, Colour::Green),
        BlueGreenState::ActiveGreen
        | BlueGreenState::SavepointingGreen
        | BlueGreenState::TransitioningToBlue => (Colour::Green, Colour::Blue),
    }
}

struct Out {
    memory: Memory,
    actions: Vec<Action>,
    event: Option<(&'static str, String)>,
    error: Option<String>,
    requeue_after: Option<Duration>,
}

impl Out {
    fn new(memory: Memory) -> Self {
        Out {
            memory,
            actions: Vec::new(),
            event: None,
            error: None,
            requeue_after: None,
        }
    }

    fn act(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    fn event(mut self, reason: &'static str, message: String) -> Self {
        self.event = Some((reason, message));
        self
    }

    fn error(mut self, error: String) -> Self {
        self.error = Some(error);
        self
    }

    fn poll(mut self) -> Self {
        self.requeue_after = Some(POLL);
        self
    }

    fn done(self) -> Reconcile {
        Reconcile {
            actions: self.actions,
            memory: self.memory,
            event: self.event,
            error: self.error,
            requeue_after: self.requeue_after,
        }
    }
}

/// What to do about one FlinkBlueGreenDeployment now.
pub fn decide(o: &Observed) -> Reconcile {
    let (old, new) = colours(o.memory.state);
    match o.memory.state {
        BlueGreenState::InitializingBlue => initializing(o),
        BlueGreenState::ActiveBlue | BlueGreenState::ActiveGreen => active(o, old, new),
        BlueGreenState::SavepointingBlue | BlueGreenState::SavepointingGreen => {
            savepointing(o, old, new)
        }
        BlueGreenState::TransitioningToGreen | BlueGreenState::TransitioningToBlue => {
            transitioning(o, old, new)
        }
    }
    .done()
}

fn initializing(o: &Observed) -> Out {
    let out = Out::new(o.memory.clone());
    match &o.blue {
        None => {
            let mut out = out.act(Action::CreateChild {
                colour: Colour::Blue,
                savepoint: None,
            });
            out.memory.target_hash = Some(o.desired_hash.clone());
            out.memory.transition_started_at = Some(o.now);
            out.event("CreatingBlue", "creating the BLUE FlinkDeployment".into())
        }
        Some(blue) if blue.template_hash != o.desired_hash => out
            .act(Action::DeleteChild {
                colour: Colour::Blue,
            })
            .event(
                "TemplateChanged",
                "the template changed before BLUE ran; recreating BLUE".into(),
            ),
        Some(blue) => match &blue.job {
            JobHealth::Running | JobHealth::Suspended => {
                let mut out = out;
                out.memory = Memory {
                    state: BlueGreenState::ActiveBlue,
                    active_hash: Some(blue.template_hash.clone()),
                    ..Memory::default()
                };
                out.event("BlueActive", "BLUE is running and emits".into())
            }
            JobHealth::Failed(reason) => out
                .error(format!("BLUE failed: {reason}; fix the template"))
                .poll(),
            JobHealth::Starting => out.poll(),
        },
    }
}

fn active(o: &Observed, active: Colour, other: Colour) -> Out {
    let mut out = Out::new(o.memory.clone());
    if o.abort_requested {
        out = out.act(Action::ForgetAbortRequest).event(
            "NothingToAbort",
            format!("abort requested, but no transition runs: {active} is active"),
        );
    }
    let Some(current) = o.child(active) else {
        return out
            .act(Action::CreateChild {
                colour: active,
                savepoint: None,
            })
            .error(format!(
                "{active} FlinkDeployment is missing; recreating it"
            ));
    };
    // The previous colour, kept for the deletion delay.
    if o.child(other).is_some() {
        let stopped = o.memory.old_stopped_at.unwrap_or(o.now);
        let delay = i64::try_from(o.deletion_delay.as_secs()).unwrap_or(i64::MAX);
        if o.now.saturating_sub(stopped) >= delay {
            out.memory.old_stopped_at = None;
            return out.act(Action::DeleteChild { colour: other }).event(
                "DeletedOldColour",
                format!("deleted {other} after the deletion delay"),
            );
        }
        if o.memory.active_hash.as_deref() == Some(o.desired_hash.as_str()) {
            out.memory.old_stopped_at = Some(stopped);
            out.requeue_after = Some(Duration::from_secs(
                u64::try_from(delay - o.now.saturating_sub(stopped)).unwrap_or(0),
            ));
            return out;
        }
        // A new template while the old colour waits for deletion: it goes
        // now, the new transition needs its name.
        out.memory.old_stopped_at = None;
        return out.act(Action::DeleteChild { colour: other }).poll();
    }
    if o.suspend {
        if current.job != JobHealth::Suspended {
            return out.act(Action::SuspendChild { colour: active }).event(
                "Suspending",
                format!("suspending {active} with a savepoint"),
            );
        }
        return out;
    }
    if current.job == JobHealth::Suspended {
        return out
            .act(Action::ResumeChild { colour: active })
            .event("Resuming", format!("resuming {active} from its savepoint"));
    }
    if o.memory.active_hash.as_deref() == Some(o.desired_hash.as_str()) {
        return out;
    }
    if o.memory.rejected_hash.as_deref() == Some(o.desired_hash.as_str()) {
        return out.error(format!(
            "template {} failed in {other} and was rolled back; {active} keeps running; edit spec.template to try again",
            o.desired_hash
        ));
    }
    // The template changed: start the other colour from the latest
    // savepoint or checkpoint, or take one first.
    match &current.savepoint {
        Some(savepoint) => start_other(out, o, other, savepoint.clone()),
        None => {
            out.memory.state = savepointing_state(active);
            out.act(Action::TriggerSavepoint { colour: active })
                .event(
                    "Savepointing",
                    format!("taking a savepoint of {active} to start {other} from"),
                )
                .poll()
        }
    }
}

fn start_other(mut out: Out, o: &Observed, other: Colour, savepoint: String) -> Out {
    out.memory.state = transitioning_state(other);
    out.memory.rejected_hash = None;
    out.memory.target_hash = Some(o.desired_hash.clone());
    out.memory.transition_started_at = Some(o.now);
    out.memory.initial_savepoint = Some(savepoint.clone());
    out.act(Action::CreateChild {
        colour: other,
        savepoint: Some(savepoint.clone()),
    })
    .event(
        "StartingNewColour",
        format!("template changed: starting {other} from {savepoint}"),
    )
    .poll()
}

fn savepointing(o: &Observed, active: Colour, other: Colour) -> Out {
    let mut out = Out::new(o.memory.clone());
    if o.abort_requested {
        // Nothing started yet: back to active, the template set aside.
        out.memory.state = active_state(active);
        out.memory.rejected_hash = Some(o.desired_hash.clone());
        return out.act(Action::ForgetAbortRequest).event(
            "AbortRequested",
            format!("abort requested before {other} started: {active} keeps emitting; this template is not tried again until it changes"),
        );
    }
    match o.child(active).and_then(|c| c.savepoint.clone()) {
        Some(savepoint) => start_other(out, o, other, savepoint),
        None => out.poll(),
    }
}

fn transitioning(o: &Observed, old: Colour, new: Colour) -> Out {
    let out = Out::new(o.memory.clone());
    let transition = o.transition_to(new);
    let phase = transition.map(|t| t.phase);
    // Done on the coordinator already (a restart after completing).
    if phase == Some(Phase::Completed) {
        return finished(out, o, new);
    }
    let revocable = matches!(phase, None | Some(Phase::Scheduled | Phase::Aborted));
    if o.abort_requested {
        let out = out.act(Action::ForgetAbortRequest);
        if revocable {
            return back_out(
                out,
                phase == Some(Phase::Scheduled),
                true,
                old,
                new,
                "AbortRequested",
                format!(
                    "abort requested: {new} is discarded and {old} keeps emitting; this template is not tried again until it changes"
                ),
            );
        }
        let phase = phase.map_or_else(|| "unknown".into(), |p| p.to_string());
        return out
            .event(
                "AbortRefused",
                format!(
                    "abort refused: the cutover to {new} is irrevocable ({phase}); it completes, then roll back"
                ),
            )
            .poll();
    }
    if o.memory.target_hash.as_deref() != Some(o.desired_hash.as_str()) && revocable {
        return back_out(
            out,
            phase == Some(Phase::Scheduled),
            false,
            old,
            new,
            "TemplateChanged",
            format!(
                "the template changed again before the cutover: {new} is discarded, a new transition follows"
            ),
        );
    }
    let Some(child) = o.child(new) else {
        let savepoint = o.memory.initial_savepoint.clone();
        return out
            .act(Action::CreateChild {
                colour: new,
                savepoint,
            })
            .poll();
    };
    let started = o.memory.transition_started_at.unwrap_or(o.now);
    let grace = i64::try_from(o.abort_grace_period.as_secs()).unwrap_or(i64::MAX);
    let late = o.now.saturating_sub(started) > grace;
    let failure = match &child.job {
        JobHealth::Failed(reason) => Some(format!("{new} failed: {reason}")),
        JobHealth::Starting | JobHealth::Suspended if late => Some(format!(
            "{new} did not become RUNNING and STABLE within {}s",
            grace
        )),
        _ => None,
    };
    if let Some(failure) = failure {
        if revocable {
            return back_out(
                out,
                phase == Some(Phase::Scheduled),
                true,
                old,
                new,
                "Aborted",
                failure.clone(),
            )
            .error(failure);
        }
        // Past the cutover the new colour owns later keys: it must recover.
        return out
            .error(format!(
                "{failure}; past the cutover, waiting for it to recover"
            ))
            .poll();
    }
    if child.job != JobHealth::Running {
        return out.poll();
    }
    let transition = transition.filter(|t| !matches!(t.phase, Phase::Aborted | Phase::Superseded));
    match transition {
        None => out
            .act(Action::ScheduleCutover {
                target: new,
                auto_promote: o.auto_promote,
            })
            .event(
                "CutoverScheduled",
                format!("{new} is running: cutover scheduled at EARLIEST"),
            )
            .poll(),
        Some(t) if t.phase == Phase::Scheduled && !t.auto_promote => {
            if o.promote_requested {
                out.act(Action::Promote)
                    .event("Promoted", format!("promotion to {new} requested"))
                    .poll()
            } else {
                out.poll()
            }
        }
        Some(t) if t.phase == Phase::Drained => match o.child(old).map(|c| &c.job) {
            Some(JobHealth::Suspended) | None => out.act(Action::CompleteTransition).event(
                "Completed",
                format!("{old} stopped: the transition to {new} is complete"),
            ),
            Some(_) => out
                .act(Action::SuspendChild { colour: old })
                .event(
                    "Draining",
                    format!("{old} drained: stopping it with a savepoint"),
                )
                .poll(),
        },
        Some(_) => out.poll(),
    }
}

/// Abort (if scheduled) and delete the new colour; the old one stays
/// active. A `rejected` template is not tried again until it changes.
fn back_out(
    mut out: Out,
    scheduled: bool,
    rejected: bool,
    old: Colour,
    new: Colour,
    reason: &'static str,
    message: String,
) -> Out {
    if scheduled {
        out = out.act(Action::AbortTransition);
    }
    out.memory.state = active_state(old);
    out.memory.rejected_hash = if rejected {
        out.memory.target_hash.take()
    } else {
        None
    };
    out.memory.target_hash = None;
    out.memory.transition_started_at = None;
    out.memory.initial_savepoint = None;
    out.act(Action::DeleteChild { colour: new })
        .event(reason, message)
}

fn finished(mut out: Out, o: &Observed, new: Colour) -> Out {
    out.memory = Memory {
        state: active_state(new),
        active_hash: o.memory.target_hash.clone(),
        old_stopped_at: Some(o.now),
        ..Memory::default()
    };
    out.event("Active", format!("{new} is active"))
}
