//! Table tests of the controller's decisions: every state, with the events
//! that move it (children starting, running, failing, suspended; the
//! coordinator's phases; template edits; promotion; suspension; time).

use std::time::Duration;

use cutover_controller::*;
use cutover_core::{Colour, Epoch, Phase};
use cutover_crds::BlueGreenState;

const V1: &str = "hash-v1";
const V2: &str = "hash-v2";
const V3: &str = "hash-v3";
const NOW: i64 = 1_000_000;

fn child(hash: &str, job: JobHealth, savepoint: Option<&str>) -> Option<Child> {
    Some(Child {
        template_hash: hash.into(),
        job,
        savepoint: savepoint.map(str::to_string),
    })
}

fn running(hash: &str) -> Option<Child> {
    child(hash, JobHealth::Running, Some("s3://sp/1"))
}

fn memory(state: BlueGreenState, active: &str) -> Memory {
    Memory {
        state,
        active_hash: Some(active.into()),
        ..Memory::default()
    }
}

fn transitioning_to_green() -> Memory {
    Memory {
        state: BlueGreenState::TransitioningToGreen,
        active_hash: Some(V1.into()),
        target_hash: Some(V2.into()),
        transition_started_at: Some(NOW - 60),
        initial_savepoint: Some("s3://sp/1".into()),
        old_stopped_at: None,
        rejected_hash: None,
    }
}

fn pipeline(to: Colour, phase: Phase, auto_promote: bool) -> Option<PipelineView> {
    Some(PipelineView {
        epoch: Epoch(7),
        active: to.other(),
        transition: Some(TransitionView {
            to,
            phase,
            auto_promote,
        }),
    })
}

/// BLUE active on V1, spec now V1: nothing to do.
fn base() -> Observed {
    Observed {
        now: NOW,
        desired_hash: V1.into(),
        suspend: false,
        auto_promote: true,
        abort_grace_period: Duration::from_secs(600),
        deletion_delay: Duration::from_secs(300),
        promote_requested: false,
        abort_requested: false,
        memory: memory(BlueGreenState::ActiveBlue, V1),
        blue: running(V1),
        green: None,
        pipeline: Some(PipelineView {
            epoch: Epoch(3),
            active: Colour::Blue,
            transition: None,
        }),
    }
}

#[test]
fn initializing_creates_blue_and_waits_for_it() {
    let mut o = base();
    o.memory = Memory::default();
    o.blue = None;
    o.pipeline = None;
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::CreateChild {
            colour: Colour::Blue,
            savepoint: None
        }]
    );
    assert_eq!(r.memory.state, BlueGreenState::InitializingBlue);
    assert_eq!(r.memory.target_hash.as_deref(), Some(V1));

    o.blue = child(V1, JobHealth::Starting, None);
    let r = decide(&o);
    assert!(r.actions.is_empty());
    assert_eq!(r.requeue_after, Some(Duration::from_secs(5)));

    o.blue = child(V1, JobHealth::Failed("bad image".into()), None);
    let r = decide(&o);
    assert!(r.actions.is_empty());
    assert!(r.error.as_deref().is_some_and(|e| e.contains("bad image")));

    o.blue = running(V1);
    let r = decide(&o);
    assert!(r.actions.is_empty());
    assert_eq!(r.memory, memory(BlueGreenState::ActiveBlue, V1));
    assert_eq!(r.event.map(|e| e.0), Some("BlueActive"));
}

#[test]
fn a_template_edit_before_blue_runs_recreates_blue() {
    let mut o = base();
    o.memory = Memory::default();
    o.blue = child(V1, JobHealth::Failed("bad jar".into()), None);
    o.desired_hash = V2.into();
    assert_eq!(
        decide(&o).actions,
        [Action::DeleteChild {
            colour: Colour::Blue
        }]
    );
}

#[test]
fn active_and_unchanged_does_nothing() {
    let r = decide(&base());
    assert!(r.actions.is_empty());
    assert_eq!(r.memory, base().memory);
    assert_eq!(r.requeue_after, None);
    assert_eq!(r.error, None);
}

#[test]
fn a_template_change_starts_green_from_blues_latest_savepoint() {
    let mut o = base();
    o.desired_hash = V2.into();
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::CreateChild {
            colour: Colour::Green,
            savepoint: Some("s3://sp/1".into())
        }]
    );
    assert_eq!(r.memory.state, BlueGreenState::TransitioningToGreen);
    assert_eq!(r.memory.target_hash.as_deref(), Some(V2));
    assert_eq!(r.memory.active_hash.as_deref(), Some(V1));
    assert_eq!(r.memory.transition_started_at, Some(NOW));
}

#[test]
fn without_a_savepoint_one_is_taken_first() {
    let mut o = base();
    o.desired_hash = V2.into();
    o.blue = child(V1, JobHealth::Running, None);
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::TriggerSavepoint {
            colour: Colour::Blue
        }]
    );
    assert_eq!(r.memory.state, BlueGreenState::SavepointingBlue);

    o.memory = r.memory;
    assert!(decide(&o).actions.is_empty(), "waits for the savepoint");
    o.blue = child(V1, JobHealth::Running, Some("s3://sp/2"));
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::CreateChild {
            colour: Colour::Green,
            savepoint: Some("s3://sp/2".into())
        }]
    );
    assert_eq!(r.memory.state, BlueGreenState::TransitioningToGreen);
}

#[test]
fn the_transition_follows_the_new_colour_and_the_coordinator() {
    let mut o = base();
    o.desired_hash = V2.into();
    o.memory = transitioning_to_green();
    // Each row: GREEN's job, the coordinator's phase of the transition to
    // GREEN (None: no transition yet), BLUE's job → actions.
    use JobHealth::{Running, Starting, Suspended};
    let schedule = || {
        vec![Action::ScheduleCutover {
            target: Colour::Green,
            auto_promote: true,
        }]
    };
    let stop_blue = || {
        vec![Action::SuspendChild {
            colour: Colour::Blue,
        }]
    };
    let table: Vec<(JobHealth, Option<Phase>, JobHealth, Vec<Action>)> = vec![
        (Starting, None, Running, vec![]),
        (Running, None, Running, schedule()),
        (Running, Some(Phase::Aborted), Running, schedule()),
        (Running, Some(Phase::Superseded), Running, schedule()),
        (Running, Some(Phase::Scheduled), Running, vec![]),
        (Running, Some(Phase::CuttingOver), Running, vec![]),
        (Running, Some(Phase::Drained), Running, stop_blue()),
        (Running, Some(Phase::Drained), Starting, stop_blue()),
        (
            Running,
            Some(Phase::Drained),
            Suspended,
            vec![Action::CompleteTransition],
        ),
    ];
    for (green, phase, blue_job, expected) in table {
        let pipeline = match phase {
            Some(phase) => pipeline(Colour::Green, phase, true),
            None => o.pipeline,
        };
        o.green = child(V2, green.clone(), None);
        o.blue = child(V1, blue_job.clone(), Some("s3://sp/1"));
        o.pipeline = pipeline;
        let r = decide(&o);
        assert_eq!(
            r.actions, expected,
            "green {green:?}, pipeline {pipeline:?}, blue {blue_job:?}"
        );
        assert_eq!(r.memory.state, BlueGreenState::TransitioningToGreen);
        assert_eq!(r.error, None);
    }
}

#[test]
fn completion_makes_green_active_and_blue_goes_after_the_deletion_delay() {
    let mut o = base();
    o.desired_hash = V2.into();
    o.memory = transitioning_to_green();
    o.green = running(V2);
    o.blue = child(V1, JobHealth::Suspended, Some("s3://sp/9"));
    o.pipeline = pipeline(Colour::Green, Phase::Completed, true);
    let r = decide(&o);
    assert!(r.actions.is_empty());
    assert_eq!(r.memory.state, BlueGreenState::ActiveGreen);
    assert_eq!(r.memory.active_hash.as_deref(), Some(V2));
    assert_eq!(r.memory.old_stopped_at, Some(NOW));

    o.memory = r.memory;
    o.now = NOW + 100;
    let r = decide(&o);
    assert!(r.actions.is_empty(), "BLUE stays for the deletion delay");
    assert_eq!(r.requeue_after, Some(Duration::from_secs(200)));

    o.now = NOW + 300;
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::DeleteChild {
            colour: Colour::Blue
        }]
    );
    assert_eq!(r.memory.old_stopped_at, None);
}

#[test]
fn a_failing_new_colour_is_aborted_within_the_grace_period() {
    let mut o = base();
    o.desired_hash = V2.into();
    o.memory = transitioning_to_green();
    // (GREEN's job, seconds since it started, the coordinator's phase) →
    // abort and delete GREEN (abort only if scheduled).
    let aborts = [
        (JobHealth::Failed("OOM".into()), 60, None, false),
        (
            JobHealth::Failed("OOM".into()),
            60,
            Some(Phase::Scheduled),
            true,
        ),
        (JobHealth::Starting, 601, None, false),
    ];
    for (job, age, phase, abort) in aborts {
        o.green = child(V2, job.clone(), None);
        o.memory.transition_started_at = Some(NOW - age);
        o.pipeline = phase.and_then(|p| pipeline(Colour::Green, p, true));
        let r = decide(&o);
        let mut expected = Vec::new();
        if abort {
            expected.push(Action::AbortTransition);
        }
        expected.push(Action::DeleteChild {
            colour: Colour::Green,
        });
        assert_eq!(r.actions, expected, "{job:?} after {age}s, {phase:?}");
        assert_eq!(
            r.memory,
            Memory {
                rejected_hash: Some(V2.into()),
                ..memory(BlueGreenState::ActiveBlue, V1)
            }
        );
        assert!(r.error.is_some());
        assert_eq!(r.event.map(|e| e.0), Some("Aborted"));
    }
    // Starting within the grace period: wait.
    o.green = child(V2, JobHealth::Starting, None);
    o.memory.transition_started_at = Some(NOW - 599);
    o.pipeline = None;
    assert!(decide(&o).actions.is_empty());
}

#[test]
fn a_rejected_template_is_not_retried_until_it_changes() {
    let mut o = base();
    o.desired_hash = V2.into();
    o.memory = Memory {
        rejected_hash: Some(V2.into()),
        ..memory(BlueGreenState::ActiveBlue, V1)
    };
    o.blue = child(V1, JobHealth::Running, Some("s3://sp/1"));
    let r = decide(&o);
    assert!(r.actions.is_empty(), "{:?}", r.actions);
    assert!(r.error.is_some_and(|e| e.contains("rolled back")));
    assert_eq!(r.memory, o.memory);
    // A new template: GREEN starts again, the rejection is forgotten.
    o.desired_hash = "v3".into();
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::CreateChild {
            colour: Colour::Green,
            savepoint: Some("s3://sp/1".into()),
        }]
    );
    assert_eq!(r.memory.rejected_hash, None);
    assert_eq!(r.memory.target_hash.as_deref(), Some("v3"));
}

#[test]
fn past_the_cutover_a_failing_new_colour_is_not_aborted() {
    let mut o = base();
    o.desired_hash = V2.into();
    o.memory = transitioning_to_green();
    o.green = child(V2, JobHealth::Failed("lost TM".into()), None);
    for phase in [Phase::CuttingOver, Phase::Drained] {
        o.pipeline = pipeline(Colour::Green, phase, true);
        let r = decide(&o);
        assert!(r.actions.is_empty(), "{phase:?}");
        assert_eq!(r.memory.state, BlueGreenState::TransitioningToGreen);
        assert!(r.error.is_some_and(|e| e.contains("past the cutover")));
    }
}

#[test]
fn manual_promotion_waits_for_the_request() {
    let mut o = base();
    o.desired_hash = V2.into();
    o.auto_promote = false;
    o.memory = transitioning_to_green();
    o.green = running(V2);
    o.pipeline = pipeline(Colour::Green, Phase::Scheduled, false);
    assert!(decide(&o).actions.is_empty());
    o.promote_requested = true;
    assert_eq!(decide(&o).actions, [Action::Promote]);
}

#[test]
fn a_template_edit_during_a_transition() {
    let mut o = base();
    o.desired_hash = V3.into();
    o.memory = transitioning_to_green();
    o.green = running(V2);
    // Before the cutover is irrevocable: GREEN (V2) is discarded.
    o.pipeline = pipeline(Colour::Green, Phase::Scheduled, true);
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [
            Action::AbortTransition,
            Action::DeleteChild {
                colour: Colour::Green
            }
        ]
    );
    assert_eq!(r.memory, memory(BlueGreenState::ActiveBlue, V1));
    // Then BLUE active with V3 desired starts GREEN again.
    o.memory = r.memory;
    o.green = None;
    o.pipeline = pipeline(Colour::Green, Phase::Aborted, true);
    let r = decide(&o);
    assert_eq!(r.memory.target_hash.as_deref(), Some(V3));
    // Past the cutover: the transition to V2 finishes first.
    o.memory = transitioning_to_green();
    o.green = running(V2);
    o.pipeline = pipeline(Colour::Green, Phase::CuttingOver, true);
    assert!(decide(&o).actions.is_empty());
}

#[test]
fn rollback_is_the_same_flow_in_reverse() {
    let mut o = base();
    o.memory = memory(BlueGreenState::ActiveGreen, V2);
    o.desired_hash = V1.into();
    o.green = child(V2, JobHealth::Running, Some("s3://sp/green"));
    o.blue = None;
    o.pipeline = pipeline(Colour::Green, Phase::Completed, true);
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::CreateChild {
            colour: Colour::Blue,
            savepoint: Some("s3://sp/green".into())
        }]
    );
    assert_eq!(r.memory.state, BlueGreenState::TransitioningToBlue);

    o.memory = r.memory;
    o.blue = running(V1);
    assert_eq!(
        decide(&o).actions,
        [Action::ScheduleCutover {
            target: Colour::Blue,
            auto_promote: true,
        }],
        "the completed transition to GREEN is not this one"
    );
    o.pipeline = pipeline(Colour::Blue, Phase::Drained, true);
    assert_eq!(
        decide(&o).actions,
        [Action::SuspendChild {
            colour: Colour::Green
        }]
    );
}

#[test]
fn a_new_template_while_the_old_colour_awaits_deletion_deletes_it_first() {
    let mut o = base();
    o.memory = memory(BlueGreenState::ActiveGreen, V2);
    o.memory.old_stopped_at = Some(NOW - 10);
    o.green = running(V2);
    o.blue = child(V1, JobHealth::Suspended, None);
    o.desired_hash = V3.into();
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::DeleteChild {
            colour: Colour::Blue
        }]
    );
    assert_eq!(r.memory.state, BlueGreenState::ActiveGreen);
}

#[test]
fn suspend_and_resume_the_active_colour() {
    let mut o = base();
    o.suspend = true;
    assert_eq!(
        decide(&o).actions,
        [Action::SuspendChild {
            colour: Colour::Blue
        }]
    );
    o.blue = child(V1, JobHealth::Suspended, Some("s3://sp/3"));
    assert!(decide(&o).actions.is_empty());
    o.desired_hash = V2.into();
    assert!(
        decide(&o).actions.is_empty(),
        "no transition while suspended"
    );
    o.suspend = false;
    assert_eq!(
        decide(&o).actions,
        [Action::ResumeChild {
            colour: Colour::Blue
        }]
    );
}

#[test]
fn a_restarted_controller_picks_up_where_the_status_left_it() {
    // Remembered TRANSITIONING_TO_GREEN but GREEN was never created.
    let mut o = base();
    o.desired_hash = V2.into();
    o.memory = transitioning_to_green();
    o.green = None;
    assert_eq!(
        decide(&o).actions,
        [Action::CreateChild {
            colour: Colour::Green,
            savepoint: Some("s3://sp/1".into())
        }]
    );
    // The active colour's child vanished: recreated, with an error.
    let mut o = base();
    o.blue = None;
    let r = decide(&o);
    assert_eq!(
        r.actions,
        [Action::CreateChild {
            colour: Colour::Blue,
            savepoint: None
        }]
    );
    assert!(r.error.is_some());
}
