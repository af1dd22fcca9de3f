//! The defects independent clients found, as table tests of the core: each
//! failed before its fix.

mod support;

use cutover_core::Colour::{Blue, Green};
use cutover_core::*;
use support::*;

/// One BLUE and one GREEN gate on session 1, GREEN owning everything, both
/// at watermark 5000, window 1000: the horizon is 6000.
fn one_gate_each() -> PipelineState {
    let doc = new_doc(Green, 1000);
    let mut state = PipelineState::new(doc);
    state
        .attach(
            SessionId(1),
            &[gate(Green, 0, 1), gate(Blue, 0, 1)],
            Epoch(0),
        )
        .expect("attach");
    report(&mut state, Green, 5000);
    report(&mut state, Blue, 5000);
    settle(&mut state);
    assert_eq!(state.doc().horizon(), Key(6000));
    state
}

fn report(state: &mut PipelineState, colour: Colour, watermark: i64) {
    state
        .progress(SessionId(1), &gate(colour, 0, 1).key(), progress(watermark))
        .expect("progress");
}

fn settle(state: &mut PipelineState) -> PipelineDoc {
    while let Some(doc) = state.propose_automatic() {
        state.install(doc).expect("install");
    }
    state.doc().clone()
}

/// Every decision of `colour` over `keys` in the current plan.
fn decisions(state: &PipelineState, colour: Colour, keys: &[i64]) -> Vec<Decision> {
    keys.iter()
        .map(|&k| state.doc().plan.decide(colour, Key(k)))
        .collect()
}

#[test]
fn a_failover_of_the_new_job_after_completion_decides_old_keys_as_before() {
    // GREEN -> BLUE at EARLIEST, drained, completed; then BLUE fails over
    // (same job, next attempt) to a checkpoint before the cutover and
    // decides keys below it again: it must drop them, as it did the first
    // time, or GREEN's records come out twice.
    let mut state = one_gate_each();
    let at = apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    })
    .transition
    .map(|t| t.at.0)
    .expect("a transition");
    let below = [at - 1000, at - 1];
    let first = decisions(&state, Blue, &below);
    assert_eq!(first, vec![Decision::Drop; 2]);
    report(&mut state, Green, at + 10);
    report(&mut state, Blue, at + 10);
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));
    apply(&mut state, |s| s.propose_complete());
    settle(&mut state);

    let mut restarted = gate(Blue, 0, 1);
    restarted.attempt = 1;
    state
        .attach(SessionId(2), &[restarted], Epoch(0))
        .expect("the new attempt takes the gate over");
    settle(&mut state);
    assert_eq!(decisions(&state, Blue, &below), first, "{:?}", state.doc());
}

#[test]
fn compaction_after_a_rollback_never_gives_keys_to_the_colour_being_stopped() {
    let mut state = one_gate_each();
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    report(&mut state, Green, 6000);
    report(&mut state, Blue, 6000);
    settle(&mut state);
    assert_eq!(state.doc().horizon(), Key(7000));
    let mut rollback = schedule(Green, CutoverAt::Earliest);
    rollback.allowed_lateness = 500;
    apply(&mut state, |s| s.propose_schedule(rollback));
    report(&mut state, Blue, 8000);
    report(&mut state, Green, 7200);
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));
    apply(&mut state, |s| s.propose_complete());
    settle(&mut state);
    // BLUE is being stopped: no key it did not own before may become its;
    // GREEN's keys below 6000 stay GREEN's.
    let low = [i64::MIN + 1, 0, 5999];
    assert_eq!(
        decisions(&state, Blue, &low),
        vec![Decision::Drop; 3],
        "{:?}",
        state.doc()
    );
    // Whatever the gates report later, the stopped colour gets nothing.
    report(&mut state, Green, 20_000);
    settle(&mut state);
    assert_eq!(decisions(&state, Blue, &low), vec![Decision::Drop; 3]);
    assert_eq!(decisions(&state, Blue, &[6500]), vec![Decision::Drop]);
}

#[test]
fn a_finished_gate_does_not_move_the_fence_to_the_end_of_time() {
    let mut state = one_gate_each();
    state
        .progress(
            SessionId(1),
            &gate(Blue, 0, 1).key(),
            GateProgress {
                finished: true,
                ..progress(i64::MAX)
            },
        )
        .expect("progress");
    settle(&mut state);
    assert!(
        state.doc().horizon() <= Key(7000),
        "horizon {}",
        state.doc().horizon()
    );
    // A gate reporting the end-of-input watermark without the flag is
    // finished too.
    report(&mut state, Blue, i64::MAX);
    settle(&mut state);
    assert!(state.doc().horizon() <= Key(7000));
}

#[test]
fn one_subtask_far_ahead_does_not_move_the_fence_arbitrarily_far() {
    // GREEN runs four subtasks; one of them meets a record stamped ~75
    // years ahead and its watermark follows it. The others run normally.
    let doc = new_doc(Green, 1000);
    let mut state = PipelineState::new(doc);
    let gates: Vec<GateIdentity> = (0..4).map(|i| gate(Green, i, 4)).collect();
    state
        .attach(SessionId(1), &gates, Epoch(0))
        .expect("attach");
    let far = 4_102_444_800_000; // 2100-01-01 in milliseconds
    for (i, g) in gates.iter().enumerate() {
        let watermark = if i == 2 { far } else { 5000 };
        state
            .progress(SessionId(1), &g.key(), progress(watermark))
            .expect("progress");
    }
    settle(&mut state);
    for step in 1..=5 {
        for (i, g) in gates.iter().enumerate() {
            let watermark = if i == 2 { far } else { 5000 + step * 400 };
            state
                .progress(SessionId(1), &g.key(), progress(watermark))
                .expect("progress");
        }
        settle(&mut state);
        let horizon = state.doc().horizon().0;
        assert!(
            horizon <= 5000 + step * 400 + 1000,
            "step {step}: horizon {horizon} follows the subtask far ahead"
        );
    }
    // The fence still runs a window ahead of the others, and a cutover at
    // EARLIEST lands next to them.
    assert!(state.doc().horizon() > Key(7000));
    let at = state
        .propose_schedule(schedule(Blue, CutoverAt::Earliest))
        .expect("schedule")
        .transition
        .map(|t| t.at)
        .expect("transition");
    assert!(at < Key(10_000), "cutover at {at}");
}

#[test]
fn once_promote_answered_the_cutover_cannot_be_aborted() {
    let mut state = one_gate_each();
    let mut manual = schedule(Blue, CutoverAt::Key(Key(9000)));
    manual.auto_promote = false;
    apply(&mut state, |s| s.propose_schedule(manual));
    apply(&mut state, |s| s.propose_promote());
    // The horizon has not passed the cutover yet; promote is still the
    // point of no return.
    assert!(state.doc().horizon() <= Key(9000));
    assert_eq!(
        state.propose_abort(),
        Err(CoreError::Promoted { at: Key(9000) })
    );
    assert_eq!(state.doc().phase(), Some(Phase::CuttingOver));
}

#[test]
fn parallelism_is_bounded_by_flinks_own_limit() {
    let mut state = one_gate_each();
    let mut wide = gate(Blue, 0, 32_768);
    wide.gate_uid = "wide".into();
    assert!(state.attach(SessionId(3), &[wide], Epoch(0)).is_ok());
    let mut other = gate(Blue, 0, 32_769);
    other.gate_uid = "wider".into();
    assert!(matches!(
        state.attach(SessionId(4), &[other], Epoch(0)),
        Err(CoreError::InvalidGate { .. })
    ));
}

/// GREEN owning, two GREEN gates (one operator) on session 1 and a cutover
/// to BLUE at 6000 cutting over (window 1000, lateness 100: mark 6100).
fn cutting_over() -> (PipelineState, [GateIdentity; 2]) {
    let mut state = PipelineState::new(new_doc(Green, 1000));
    let greens = [gate(Green, 0, 2), gate(Green, 1, 2)];
    state
        .attach(SessionId(1), &greens, Epoch(0))
        .expect("attach");
    for g in &greens {
        state
            .progress(SessionId(1), &g.key(), progress(5000))
            .expect("progress");
    }
    settle(&mut state);
    let mut request = schedule(Blue, CutoverAt::Earliest);
    request.allowed_lateness = 100;
    apply(&mut state, |s| s.propose_schedule(request));
    for g in &greens {
        state
            .progress(SessionId(1), &g.key(), progress(5900))
            .expect("progress");
    }
    assert_eq!(settle(&mut state).phase(), Some(Phase::CuttingOver));
    (state, greens)
}

fn report_progress(state: &mut PipelineState, session: u64, g: &GateIdentity, p: GateProgress) {
    state
        .progress(SessionId(session), &g.key(), p)
        .expect("progress");
}

#[test]
fn a_gate_reporting_checkpoints_drains_once_its_checkpoint_is_past_the_mark() {
    // The old job must not be stopped while a failover could still take it
    // back behind the cutover: its uncommitted output would be lost.
    let (mut state, greens) = cutting_over();
    for g in &greens {
        let mut p = progress(6200);
        p.checkpointed = Some(Key(5950));
        report_progress(&mut state, 1, g, p);
    }
    assert_eq!(settle(&mut state).phase(), Some(Phase::CuttingOver));
    let mut p = progress(6200);
    p.checkpointed = Some(Key(6100));
    report_progress(&mut state, 1, &greens[0], p);
    assert_eq!(settle(&mut state).phase(), Some(Phase::CuttingOver));
    // Subtask 1's task fails: its last checkpoint is past the mark, so it
    // counts while disconnected, as it restarts from there.
    report_progress(&mut state, 1, &greens[1], p);
    state
        .detach(SessionId(1), &[greens[1].key()])
        .expect("detach");
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));
}

#[test]
fn a_gate_holding_a_record_below_the_cutover_is_not_drained() {
    // A record still held when the old job stops would be lost with it.
    let (mut state, greens) = cutting_over();
    report_progress(&mut state, 1, &greens[0], progress(6200));
    let mut holding = progress(6200);
    holding.lowest_held = Some(Key(5990));
    report_progress(&mut state, 1, &greens[1], holding);
    assert_eq!(settle(&mut state).phase(), Some(Phase::CuttingOver));
    holding.lowest_held = Some(Key(6000));
    report_progress(&mut state, 1, &greens[1], holding);
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));
}

#[test]
fn a_recorded_operator_that_never_returns_can_be_forgotten_once_no_gate_of_it_runs() {
    // GREEN's job had two gate operators, recorded; the second is gone for
    // good (a hostile or broken client registered it once).
    let (mut state, greens) = cutting_over();
    let mut stray = gate(Green, 0, 5000);
    stray.gate_uid = "stray".into();
    state
        .attach(SessionId(2), std::slice::from_ref(&stray), Epoch(0))
        .expect("attach");
    settle(&mut state);
    assert!(state.doc().operators.of(Green).contains_key("stray"));
    for g in &greens {
        report_progress(&mut state, 1, g, progress(6200));
    }
    assert_eq!(settle(&mut state).phase(), Some(Phase::CuttingOver));
    assert!(matches!(
        state.propose_forget_operator(Green, "stray"),
        Err(CoreError::OperatorConnected { connected: 1, .. })
    ));
    state.close_session(SessionId(2));
    assert!(matches!(
        state.propose_forget_operator(Blue, "stray"),
        Err(CoreError::UnknownOperator { .. })
    ));
    let doc = apply(&mut state, |s| s.propose_forget_operator(Green, "stray"));
    assert!(!doc.operators.of(Green).contains_key("stray"));
    state
        .forget_operator_gates(Green, "stray")
        .expect("no gate of it runs");
    assert_eq!(settle(&mut state).phase(), Some(Phase::Drained));
}

#[test]
fn the_same_gate_twice_in_one_registration_is_refused() {
    let mut state = one_gate_each();
    let mut g = gate(Green, 0, 2);
    g.gate_uid = "new".into();
    let twice = [g.clone(), g];
    assert!(matches!(
        state.attach(SessionId(5), &twice, Epoch(0)),
        Err(CoreError::GateListedTwice { .. })
    ));
}

#[test]
fn values_that_break_arithmetic_are_refused_with_their_bound() {
    let state = one_gate_each();
    let mut late = schedule(Blue, CutoverAt::Earliest);
    late.allowed_lateness = u64::MAX;
    let err = state.propose_schedule(late).expect_err("lateness");
    assert!(matches!(err, CoreError::OutOfBounds { .. }), "{err}");
    assert!(err.to_string().contains("2^40"), "{err}");
    for key in [i64::MAX, limits::MAX_CUTOVER_KEY + 1] {
        let err = state
            .propose_schedule(schedule(Blue, CutoverAt::Key(Key(key))))
            .expect_err("key");
        assert!(err.to_string().contains("2^62"), "{err}");
    }
    for window in [0, 1 << 63, u64::MAX] {
        assert!(HorizonPolicy::new(window).is_err(), "{window}");
    }
    assert!(HorizonPolicy::new(1000).is_ok());
}

#[test]
fn a_pipeline_created_again_replaces_the_old_incarnation_and_no_retired_key_comes_back() {
    let mut state = one_gate_each();
    let old = state.doc().clone();
    let again = PipelineDoc::new(
        name(),
        Blue,
        HorizonPolicy::with_window(1000),
        Incarnation(2),
    );
    assert_eq!(state.install(again.clone()), Ok(Installed::Replaced));
    assert_eq!(state.doc(), &again);
    assert_eq!(again.epoch(), Epoch(1));
    // Within one incarnation, a document that hands a retired key back is
    // refused.
    let mut retired = old.clone();
    retired.plan.epoch = Epoch(10);
    retired.plan.retired.green = Key(5500);
    let mut state = PipelineState::new(retired.clone());
    let mut back = retired.clone();
    back.plan.epoch = Epoch(11);
    back.plan.retired.green = Key::MIN;
    assert!(state.install(back).is_err());
    let mut other_owner = retired.clone();
    other_owner.plan.epoch = Epoch(11);
    other_owner.plan.retired = RetiredBelow::NONE;
    other_owner.plan.timeline = Timeline::new(Blue);
    assert!(state.install(other_owner).is_err());
}
