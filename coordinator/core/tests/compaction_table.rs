//! Compaction: segments every gate of both colours is past merge away, so a
//! document stays small however many transitions a pipeline goes through;
//! nothing from the compaction floor on changes owner.

mod support;

use cutover_core::Colour::{Blue, Green};
use cutover_core::*;
use support::*;

/// GREEN and BLUE gates (parallelism 2 each) on session 1, GREEN owning
/// everything, the horizon raised from watermark 1000 (window 100).
fn two_jobs() -> (PipelineState, Vec<GateIdentity>) {
    let doc = PipelineDoc::new(name(), Green, HorizonPolicy::with_window(100));
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
fn segments_merge_once_the_transition_is_completed_and_every_gate_is_past() {
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

    // Drained: both jobs still run, nothing merges.
    move_all(&mut state, &gates, at + 50);
    let drained = settle(&mut state);
    assert_eq!(drained.phase(), Some(Phase::Drained));
    assert_eq!(starts(&drained), vec![(i64::MIN, Green), (at, Blue)]);
    assert_eq!(drained.compacted_below, Key::MIN);

    // Completed (GREEN stopped), every gate past the cutover plus lateness:
    // the completion write itself compacts.
    let completed = apply(&mut state, |s| s.propose_complete());
    assert_eq!(completed.phase(), Some(Phase::Completed));
    assert_eq!(starts(&completed), vec![(i64::MIN, Blue)]);
    assert_eq!(completed.compacted_below, Key(at));
    assert_eq!(
        completed.segments_epoch,
        completed.epoch(),
        "gates get the new segments"
    );
    for key in [i64::MIN, at - 1, at, at + 1] {
        assert_eq!(completed.plan.decide(Blue, Key(key)), Decision::Emit);
        assert_eq!(completed.plan.decide(Green, Key(key)), Decision::Drop);
    }
    let rest = settle(&mut state);
    assert_eq!(rest.compacted_below, Key(at), "nothing left to compact");
    assert_eq!(starts(&rest), vec![(i64::MIN, Blue)]);
}

#[test]
fn open_or_aborted_transitions_and_gates_behind_block_compaction() {
    let (mut state, gates) = two_jobs();
    let at = schedule_blue_at_earliest(&mut state);
    apply(&mut state, |s| s.propose_abort());
    assert_eq!(state.doc().phase(), Some(Phase::Aborted));

    // Schedule again at a later key; while it is pending nothing merges.
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Key(Key(at + 500))))
    });
    move_all(&mut state, &gates, at + 300);
    let doc = settle(&mut state);
    assert_eq!(doc.phase(), Some(Phase::Scheduled));
    assert_eq!(doc.compacted_below, Key::MIN);

    // Drained and completed with one BLUE subtask behind the cutover: the
    // segments stay until it catches up.
    move_all(&mut state, &gates[..3], at + 600);
    state
        .progress(SessionId(1), &gates[3].key(), progress(at + 499))
        .expect("progress");
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));
    let completed = apply(&mut state, |s| s.propose_complete());
    assert_eq!(
        completed.compacted_below,
        Key::MIN,
        "blue subtask 1 is behind"
    );
    assert_eq!(completed.plan.timeline.segments().len(), 2);

    move_all(&mut state, &gates[3..], at + 600);
    let doc = settle(&mut state);
    assert_eq!(doc.compacted_below, Key(at + 500));
    assert_eq!(starts(&doc), vec![(i64::MIN, Blue)]);
}

#[test]
fn completion_compacts_when_only_the_new_colour_is_left() {
    let (mut state, gates) = two_jobs();
    let at = schedule_blue_at_earliest(&mut state);
    // GREEN drains; BLUE is behind the cutover, so nothing merges yet.
    move_all(&mut state, &gates, at + 10);
    for g in gates.iter().filter(|g| g.colour == Blue) {
        state
            .progress(SessionId(1), &g.key(), progress(at - 10))
            .expect("progress");
    }
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));

    // A restarted coordinator knows only BLUE's gates, which catch up.
    let mut restarted = PipelineState::new(state.doc().clone());
    let blues: Vec<GateIdentity> = gates.iter().filter(|g| g.colour == Blue).cloned().collect();
    restarted
        .attach(SessionId(7), &blues, state.doc().epoch())
        .expect("attach");
    for g in &blues {
        restarted
            .progress(SessionId(7), &g.key(), progress(at))
            .expect("progress");
    }
    assert_eq!(
        restarted.propose_automatic().map(|d| d.compacted_below),
        None,
        "GREEN is not known to be stopped before completion"
    );
    let done = apply(&mut restarted, |s| s.propose_complete());
    assert_eq!(done.phase(), Some(Phase::Completed));
    assert_eq!(
        done.compacted_below,
        Key(at),
        "the completion write compacts"
    );
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
fn install_refuses_a_floor_that_falls_or_passes_the_horizon() {
    let (mut state, gates) = two_jobs();
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    move_all(&mut state, &gates, 5000);
    settle(&mut state);
    let doc = apply(&mut state, |s| s.propose_complete());
    assert!(doc.compacted_below > Key::MIN);

    let mut too_high = doc.clone();
    too_high.plan.epoch = doc.epoch().next();
    too_high.compacted_below = doc.horizon().saturating_add(1);
    assert!(matches!(
        state.install(too_high),
        Err(CoreError::InvalidDocument { .. } | CoreError::InvalidCompaction { .. })
    ));
    let mut falling = doc.clone();
    falling.plan.epoch = doc.epoch().next();
    falling.compacted_below = Key::MIN;
    assert!(matches!(
        state.install(falling),
        Err(CoreError::InvalidCompaction { .. })
    ));
    // An owner change between the floor and the horizon is still a fence
    // violation.
    let mut moved = doc.clone();
    moved.plan.epoch = doc.epoch().next();
    moved.plan.timeline = Timeline::new(Green);
    assert!(matches!(
        state.install(moved),
        Err(CoreError::FenceViolation { .. })
    ));
    assert_eq!(state.doc(), &doc, "refusals change nothing");
}
