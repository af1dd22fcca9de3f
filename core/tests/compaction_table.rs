//! Retirement and compaction: a completed transition retires the keys its
//! stopped colour decided and the keys the running colour can no longer
//! replay; segments below both floors merge away, so a document stays small
//! however many transitions a pipeline goes through. No key is ever given
//! to a colour.

mod support;

use cutover_core::Colour::{Blue, Green};
use cutover_core::*;
use support::*;

/// GREEN and BLUE gates (parallelism 2 each) on session 1, GREEN owning
/// everything, the horizon raised from watermark 1000 (window 100).
fn two_jobs() -> (PipelineState, Vec<GateIdentity>) {
    let doc = new_doc(Green, 100);
    let mut state = PipelineState::new(doc);
    let gates: Vec<GateIdentity> = (0..2)
        .flat_map(|i| [gate(Green, i, 2), gate(Blue, i, 2)])
        .collect();
    state
        .attach(SessionId(1), &gates, Epoch(0))
        .expect("attach");
    move_all(&mut state, &gates, 1000);
    automatic(&mut state).expect("a first horizon");
    (state, gates)
}

fn move_all(state: &mut PipelineState, gates: &[GateIdentity], watermark: i64) {
    for g in gates {
        state
            .progress(SessionId(1), &g.key(), progress(watermark))
            .expect("progress");
    }
}

/// Reports `watermark` and a last completed checkpoint at `checkpointed`.
fn checkpoint_all(
    state: &mut PipelineState,
    gates: &[GateIdentity],
    watermark: i64,
    checkpointed: i64,
) {
    for g in gates {
        let mut p = progress(watermark);
        p.checkpointed = Some(Key(checkpointed));
        state.progress(SessionId(1), &g.key(), p).expect("progress");
    }
}

fn floors(doc: &PipelineDoc) -> (i64, i64) {
    (doc.plan.retired.blue.0, doc.plan.retired.green.0)
}

/// Schedules BLUE at the earliest key; returns that key.
fn schedule_blue_at_earliest(state: &mut PipelineState) -> i64 {
    let doc = apply(state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    doc.transition
        .as_ref()
        .map(|t| t.at.0)
        .expect("a transition")
}

fn automatic(state: &mut PipelineState) -> Option<PipelineDoc> {
    let doc = state.propose_automatic()?;
    state.install(doc.clone()).expect("install");
    Some(doc)
}

/// Runs automatic proposals until none is left; returns the last document.
fn settle(state: &mut PipelineState) -> PipelineDoc {
    while automatic(state).is_some() {}
    state.doc().clone()
}

fn starts(doc: &PipelineDoc) -> Vec<(i64, Colour)> {
    doc.plan
        .timeline
        .segments()
        .iter()
        .map(|s| (s.start.0, s.owner))
        .collect()
}

#[test]
fn completion_retires_the_stopped_colours_keys_and_merges_the_segments() {
    let (mut state, gates) = two_jobs();
    let mut request = schedule(Blue, CutoverAt::Earliest);
    request.allowed_lateness = 50;
    let scheduled = apply(&mut state, |s| s.propose_schedule(request));
    let at = scheduled
        .transition
        .as_ref()
        .map(|t| t.at.0)
        .expect("a transition");
    assert_eq!(starts(&scheduled), vec![(i64::MIN, Green), (at, Blue)]);

    // Drained: both jobs still run, nothing is retired.
    move_all(&mut state, &gates, at + 50);
    let drained = settle(&mut state);
    assert_eq!(drained.phase(), Some(Phase::Drained));
    assert_eq!(starts(&drained), vec![(i64::MIN, Green), (at, Blue)]);
    assert_eq!(drained.plan.retired, RetiredBelow::NONE);

    // Completed (GREEN stopped): GREEN retires every key below the cutover,
    // BLUE those it never owned; below both, no colour emits and the
    // segments merge in the completion write itself.
    let completed = apply(&mut state, |s| s.propose_complete());
    assert_eq!(completed.phase(), Some(Phase::Completed));
    assert_eq!(floors(&completed), (at, at));
    assert_eq!(starts(&completed), vec![(i64::MIN, Blue)]);
    assert_eq!(completed.compacted_below(), Key(at));
    assert_eq!(
        completed.segments_epoch,
        completed.epoch(),
        "gates get the new plan"
    );
    for key in [i64::MIN, at - 1] {
        assert_eq!(
            completed.plan.decide(Blue, Key(key)),
            Decision::Drop,
            "{key}"
        );
        assert_eq!(
            completed.plan.decide(Green, Key(key)),
            Decision::Drop,
            "{key}"
        );
    }
    for key in [at, at + 1] {
        assert_eq!(completed.plan.decide(Blue, Key(key)), Decision::Emit);
        assert_eq!(completed.plan.decide(Green, Key(key)), Decision::Drop);
    }
    let rest = settle(&mut state);
    assert_eq!(floors(&rest), (at, at), "nothing left to retire");
}

#[test]
fn nothing_is_retired_while_a_transition_is_open_or_after_an_abort() {
    let (mut state, gates) = two_jobs();
    let at = schedule_blue_at_earliest(&mut state);
    apply(&mut state, |s| s.propose_abort());
    assert_eq!(state.doc().phase(), Some(Phase::Aborted));
    move_all(&mut state, &gates, at + 300);
    assert_eq!(settle(&mut state).plan.retired, RetiredBelow::NONE);

    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Key(Key(at + 500))))
    });
    checkpoint_all(&mut state, &gates, at + 400, at + 400);
    let doc = settle(&mut state);
    assert_eq!(doc.phase(), Some(Phase::Scheduled));
    assert_eq!(doc.plan.retired, RetiredBelow::NONE);
    assert_eq!(doc.plan.timeline.segments().len(), 2);
}

#[test]
fn after_a_rollback_the_running_colour_retires_its_own_keys_only_once_checkpointed_past_them() {
    // GREEN -> BLUE at 1100, rolled back to GREEN at 1200 (lateness 50)
    // before it completed: GREEN's job ran throughout and emitted the keys
    // below 1100; a failover may replay them until its checkpoints pass.
    let (mut state, gates) = two_jobs();
    let first = schedule_blue_at_earliest(&mut state);
    move_all(&mut state, &gates, first + 50);
    settle(&mut state);
    let mut rollback = schedule(Green, CutoverAt::Earliest);
    rollback.allowed_lateness = 50;
    let second = apply(&mut state, |s| s.propose_schedule(rollback))
        .transition
        .map(|t| t.at.0)
        .expect("a transition");
    assert_eq!(
        starts(state.doc()),
        vec![(i64::MIN, Green), (first, Blue), (second, Green)]
    );
    let (blues, greens): (Vec<GateIdentity>, Vec<GateIdentity>) =
        gates.iter().cloned().partition(|g| g.colour == Blue);
    checkpoint_all(&mut state, &blues, second + 60, second + 60);
    checkpoint_all(&mut state, &greens, second + 60, first - 10);
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));
    let completed = apply(&mut state, |s| s.propose_complete());
    // BLUE (stopped) retires everything below its cutover's end; GREEN's
    // checkpoints are below its first segment's end plus lateness.
    assert_eq!(floors(&completed), (second, i64::MIN));
    assert_eq!(completed.plan.decide(Green, Key(first - 1)), Decision::Emit);
    assert_eq!(completed.plan.decide(Blue, Key(first + 1)), Decision::Drop);

    checkpoint_all(&mut state, &greens, second + 60, first + 49);
    assert_eq!(
        floors(&settle(&mut state)),
        (second, i64::MIN),
        "lateness not yet"
    );
    // Checkpointed past the first cutover plus lateness: GREEN's keys below
    // it are retired, and, owning nothing up to the second cutover, so are
    // those.
    checkpoint_all(&mut state, &greens, second + 60, first + 50);
    let doc = settle(&mut state);
    assert_eq!(floors(&doc), (second, second));
    assert_eq!(starts(&doc), vec![(i64::MIN, Green)]);
}

#[test]
fn a_gate_that_cannot_report_checkpoints_keeps_its_own_keys() {
    let (mut state, gates) = two_jobs();
    let first = schedule_blue_at_earliest(&mut state);
    move_all(&mut state, &gates, first + 50);
    settle(&mut state);
    let second = apply(&mut state, |s| {
        s.propose_schedule(schedule(Green, CutoverAt::Earliest))
    })
    .transition
    .map(|t| t.at.0)
    .expect("a transition");
    move_all(&mut state, &gates, second + 10_000);
    settle(&mut state);
    apply(&mut state, |s| s.propose_complete());
    let doc = settle(&mut state);
    assert_eq!(floors(&doc), (second, i64::MIN));
    assert_eq!(doc.plan.decide(Green, Key(first - 1)), Decision::Emit);
}

#[test]
fn a_restarted_coordinator_retires_at_completion_knowing_only_the_new_colour() {
    let (mut state, gates) = two_jobs();
    let at = schedule_blue_at_earliest(&mut state);
    // GREEN drains; BLUE is behind the cutover.
    move_all(&mut state, &gates, at + 10);
    for g in gates.iter().filter(|g| g.colour == Blue) {
        state
            .progress(SessionId(1), &g.key(), progress(at - 10))
            .expect("progress");
    }
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));

    let mut restarted = PipelineState::new(state.doc().clone());
    let blues: Vec<GateIdentity> = gates.iter().filter(|g| g.colour == Blue).cloned().collect();
    restarted
        .attach(SessionId(7), &blues, state.doc().epoch())
        .expect("attach");
    assert_eq!(
        restarted.propose_automatic().map(|d| d.plan.retired),
        None,
        "GREEN is not known to be stopped before completion"
    );
    let done = apply(&mut restarted, |s| s.propose_complete());
    assert_eq!(done.phase(), Some(Phase::Completed));
    assert_eq!(floors(&done), (at, at));
    assert_eq!(starts(&done), vec![(i64::MIN, Blue)]);
}

#[test]
fn a_thousand_transitions_keep_the_document_small() {
    let (mut state, gates) = two_jobs();
    let mut watermark = 1000;
    let mut largest = 0;
    for round in 0..1000 {
        let target = if round % 2 == 0 { Blue } else { Green };
        apply(&mut state, |s| {
            s.propose_schedule(schedule(target, CutoverAt::Earliest))
        });
        watermark += 250;
        move_all(&mut state, &gates, watermark);
        settle(&mut state);
        apply(&mut state, |s| s.propose_complete());
        let doc = settle(&mut state);
        assert_eq!(doc.active(), target);
        assert_eq!(doc.plan.timeline.segments().len(), 1, "round {round}");
        largest = largest.max(serde_json::to_vec(&doc).expect("serialises").len());
    }
    // History is capped, the timeline compacted: a few KiB, not 1 MiB.
    assert!(largest < 8 * 1024, "largest document {largest} bytes");
}

#[test]
fn install_refuses_floors_that_fall_or_pass_the_horizon_and_keys_that_come_back() {
    let (mut state, gates) = two_jobs();
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    move_all(&mut state, &gates, 5000);
    settle(&mut state);
    let doc = apply(&mut state, |s| s.propose_complete());
    assert!(doc.plan.retired.green > Key::MIN);

    let next = |change: &dyn Fn(&mut PipelineDoc)| {
        let mut next = doc.clone();
        next.plan.epoch = doc.epoch().next();
        change(&mut next);
        next
    };
    let too_high = next(&|d| d.plan.retired.blue = d.horizon().saturating_add(1));
    assert!(matches!(
        state.install(too_high),
        Err(CoreError::InvalidDocument { .. } | CoreError::InvalidRetirement { .. })
    ));
    let falling = next(&|d| d.plan.retired.green = Key::MIN);
    assert!(matches!(
        state.install(falling),
        Err(CoreError::InvalidRetirement { .. })
    ));
    // An owner change above the floors and below the horizon is a fence
    // violation, and so is handing a retired key back through another
    // owner with its floor passed.
    let moved = next(&|d| d.plan.timeline = Timeline::new(Green));
    assert!(matches!(
        state.install(moved),
        Err(CoreError::FenceViolation { .. })
    ));
    assert_eq!(state.doc(), &doc, "refusals change nothing");
}
