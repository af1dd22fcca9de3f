//! Table tests of the pipeline state machine: every request in every phase.

mod support;

use Colour::*;
use cutover_core::*;
use support::*;

#[test]
fn horizon_bootstraps_from_the_first_watermark() {
    let state = running_pipeline(1000);
    assert_eq!(state.doc().horizon(), Key(1100));
    assert_eq!(state.doc().epoch(), Epoch(2));
}

#[test]
fn schedule_at_earliest_uses_the_persisted_horizon() {
    let mut state = running_pipeline(1000);
    let doc = apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    let t = doc.transition.clone().expect("transition");
    assert_eq!(t.at, Key(1100));
    assert_eq!((t.from, t.to), (Green, Blue));
    assert_eq!(doc.phase(), Some(Phase::Scheduled));
    assert_eq!(doc.plan.timeline.owner_of(Key(1099)), Green);
    assert_eq!(doc.plan.timeline.owner_of(Key(1100)), Blue);
    assert_eq!(doc.segments_epoch, doc.epoch());
}

#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let state = running_pipeline(1000);
    let before = state.doc().clone();
    let cases: Vec<(&str, Result<PipelineDoc, CoreError>, CoreError)> = vec![
        (
            "below the horizon",
            state.propose_schedule(schedule(Blue, CutoverAt::Key(Key(5)))),
            CoreError::BelowHorizon {
                requested: Key(5),
                earliest: Key(1100),
            },
        ),
        (
            "target already owns",
            state.propose_schedule(schedule(Green, CutoverAt::Earliest)),
            CoreError::AlreadyOwner { colour: Green },
        ),
        (
            "abort with nothing pending",
            state.propose_abort(),
            CoreError::NoTransition {
                expected: "pending",
            },
        ),
        (
            "promote with nothing pending",
            state.propose_promote(),
            CoreError::NoTransition {
                expected: "pending",
            },
        ),
        (
            "complete with nothing drained",
            state.propose_complete(),
            CoreError::NoTransition {
                expected: "drained",
            },
        ),
    ];
    for (name, got, expected) in cases {
        assert_eq!(got, Err(expected), "{name}");
    }
    assert_eq!(state.doc(), &before);
    let message = CoreError::BelowHorizon {
        requested: Key(5),
        earliest: Key(1100),
    }
    .to_string();
    assert!(
        message.contains("earliest allowed key is 1100"),
        "{message}"
    );
}

#[test]
fn earliest_needs_a_horizon() {
    let doc = new_doc(Green, 100);
    let state = PipelineState::new(doc);
    assert_eq!(
        state.propose_schedule(schedule(Blue, CutoverAt::Earliest)),
        Err(CoreError::NoHorizonYet)
    );
    // An explicit key is fine: the horizon is -inf.
    assert!(
        state
            .propose_schedule(schedule(Blue, CutoverAt::Key(Key(0))))
            .is_ok()
    );
}

#[test]
fn a_second_schedule_while_one_is_pending_is_refused() {
    let mut state = running_pipeline(1000);
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Key(Key(5000))))
    });
    assert_eq!(
        state.propose_schedule(schedule(Green, CutoverAt::Key(Key(6000)))),
        Err(CoreError::TransitionPending {
            to: Blue,
            at: Key(5000)
        })
    );
}

#[test]
fn abort_before_the_horizon_passes_restores_the_timeline() {
    let mut state = running_pipeline(1000);
    let original = state.doc().plan.timeline.clone();
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Key(Key(5000))))
    });
    let doc = apply(&mut state, |s| s.propose_abort());
    assert_eq!(doc.plan.timeline, original);
    assert_eq!(doc.phase(), Some(Phase::Aborted));
}

#[test]
fn abort_is_refused_once_the_horizon_passed_the_cutover() {
    let mut state = running_pipeline(1000);
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    // Gates move on: the horizon passes the cutover at 1100.
    state
        .progress(SessionId(1), &gate(Green, 0, 1).key(), progress(1090))
        .expect("progress");
    apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(state.doc().phase(), Some(Phase::CuttingOver));
    assert_eq!(
        state.propose_abort(),
        Err(CoreError::Irrevocable {
            at: Key(1100),
            horizon: state.doc().horizon()
        })
    );
}

#[test]
fn manual_promotion_caps_the_horizon_at_the_cutover() {
    let mut state = running_pipeline(1000);
    let mut request = schedule(Blue, CutoverAt::Key(Key(1150)));
    request.auto_promote = false;
    apply(&mut state, |s| s.propose_schedule(request));
    state
        .progress(SessionId(1), &gate(Green, 0, 1).key(), progress(1140))
        .expect("progress");
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(doc.horizon(), Key(1150), "capped at the cutover");
    assert_eq!(state.propose_automatic(), None, "stays capped");
    assert_eq!(doc.phase(), Some(Phase::Scheduled), "still abortable");
    apply(&mut state, |s| s.propose_promote());
    assert_eq!(
        state.propose_promote(),
        Err(CoreError::NotAwaitingPromotion)
    );
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert!(doc.horizon() > Key(1150));
    assert_eq!(doc.phase(), Some(Phase::CuttingOver));
}

#[test]
fn rollback_after_the_cutover_supersedes_it() {
    let mut state = running_pipeline(1000);
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    state
        .progress(SessionId(1), &gate(Green, 0, 1).key(), progress(1100))
        .expect("progress");
    apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    let doc = apply(&mut state, |s| {
        s.propose_schedule(schedule(Green, CutoverAt::Earliest))
    });
    assert_eq!(
        doc.history.last().map(|t| t.state),
        Some(TransitionState::Superseded)
    );
    let owners: Vec<_> = doc
        .plan
        .timeline
        .segments()
        .iter()
        .map(|s| s.owner)
        .collect();
    assert_eq!(owners, vec![Green, Blue, Green]);
}

#[test]
fn gate_registration_rules() {
    let mut state = running_pipeline(1000);
    let before = state.status();
    // Same identity, same attempt, on another live session.
    assert!(matches!(
        state.attach(SessionId(2), &[gate(Green, 0, 1)], Epoch(0)),
        Err(CoreError::DuplicateGate { .. })
    ));
    // Subtask index out of range.
    assert!(matches!(
        state.attach(SessionId(2), &[gate(Blue, 3, 3)], Epoch(0)),
        Err(CoreError::InvalidGate { .. })
    ));
    // One bad gate refuses the whole batch.
    assert!(
        state
            .attach(
                SessionId(2),
                &[gate(Blue, 0, 2), gate(Blue, 2, 2)],
                Epoch(0)
            )
            .is_err()
    );
    assert_eq!(state.status(), before, "refusals change nothing");
    // A higher attempt takes the gate over.
    let mut retry = gate(Green, 0, 1);
    retry.attempt = 1;
    state
        .attach(SessionId(2), &[retry.clone()], Epoch(0))
        .expect("takeover");
    assert!(state.ledger().is_on_session(SessionId(2), &retry.key()));
    assert!(!state.ledger().is_on_session(SessionId(1), &retry.key()));
    // Acks for epochs never sent.
    let future = state.doc().epoch().next();
    assert!(matches!(
        state.ack(SessionId(2), future),
        Err(CoreError::AckFromFuture { .. })
    ));
    // Progress for a gate not on the session.
    assert!(matches!(
        state.progress(SessionId(1), &retry.key(), progress(5)),
        Err(CoreError::UnknownGate { .. })
    ));
}

#[test]
fn status_counts_expected_connected_and_acked() {
    let mut state = running_pipeline(1000);
    state
        .attach(
            SessionId(2),
            &[gate(Blue, 0, 3), gate(Blue, 1, 3)],
            Epoch(0),
        )
        .expect("attach");
    let status = state.status();
    assert_eq!(
        (
            status.blue.expected,
            status.blue.connected,
            status.blue.acked
        ),
        (3, 2, 0)
    );
    state.ack(SessionId(2), state.doc().epoch()).expect("ack");
    state.ack(SessionId(1), state.doc().epoch()).expect("ack");
    let status = state.status();
    assert_eq!(status.blue.acked, 2);
    assert_eq!(status.green.acked, 1);
    assert!(!status.all_acked(), "one blue gate never connected");
    state
        .attach(SessionId(2), &[gate(Blue, 2, 3)], Epoch(0))
        .expect("attach");
    assert!(state.status().all_acked());
    state.close_session(SessionId(2));
    let status = state.status();
    assert_eq!((status.blue.expected, status.blue.connected), (3, 0));
}

#[test]
fn a_record_far_in_the_future_does_not_move_the_fence() {
    let mut state = running_pipeline(1000);
    let horizon = state.doc().horizon();
    state
        .horizon_request(
            SessionId(1),
            &gate(Green, 0, 1).key(),
            Key(10_000_000_000),
            Key(1000),
        )
        .expect("request");
    assert_eq!(state.propose_automatic(), None);
    assert_eq!(state.doc().horizon(), horizon);
}

#[test]
fn install_refuses_older_and_fence_breaking_documents() {
    let mut state = running_pipeline(1000);
    let old = state.doc().clone();
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    assert!(matches!(
        state.install(old.clone()),
        Err(CoreError::StaleDocument { .. })
    ));
    // A forged successor that moves a key below the horizon.
    let mut forged = state.doc().clone();
    forged.plan.epoch = forged.plan.epoch.next();
    forged.plan.timeline = Timeline::new(Green)
        .with_appended(Key(500), Blue)
        .expect("valid");
    assert!(matches!(
        state.install(forged),
        Err(CoreError::FenceViolation { .. })
    ));
}

#[test]
fn gate_operators_ride_along_outside_a_transition_and_are_written_within_one() {
    let doc = new_doc(Green, 100);
    let mut state = PipelineState::new(doc);
    let a = operator_gate(Green, "sink-a");
    state
        .attach(SessionId(1), std::slice::from_ref(&a), Epoch(0))
        .expect("attach");
    assert_eq!(
        state.propose_automatic(),
        None,
        "a new operator alone is no reason to write outside a transition"
    );
    state
        .progress(SessionId(1), &a.key(), progress(1000))
        .expect("progress");
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(
        doc.operators.of(Green),
        &Operators::from([("sink-a".to_string(), 1)]),
        "recorded with the first horizon"
    );
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });

    // In flight: a new operator of the old colour is written at once...
    let b = operator_gate(Green, "sink-b");
    state
        .attach(SessionId(1), std::slice::from_ref(&b), Epoch(0))
        .expect("attach");
    let before = state.doc().horizon();
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(doc.horizon(), before);
    assert_eq!(
        doc.operators.of(Green),
        &Operators::from([("sink-a".to_string(), 1), ("sink-b".to_string(), 1)])
    );
    // ...but another parallelism of a recorded one is not.
    let rescaled = GateIdentity {
        gate_uid: "sink-a".into(),
        ..gate(Green, 1, 2)
    };
    state
        .attach(SessionId(2), std::slice::from_ref(&rescaled), Epoch(0))
        .expect("attach");
    assert_eq!(state.propose_automatic(), None);

    // A restarted coordinator expects the recorded gates before any is back.
    let restarted = PipelineState::new(doc);
    let green = restarted.status().green;
    assert_eq!((green.expected, green.connected), (2, 0));
}
