//! Table tests of the DRAINED bookkeeping (`src/drain.rs`): which gates
//! must be past the drain mark — the running job's operators, the recorded
//! ones after a restart, never gates an earlier job left behind — and when a
//! gate counts: restarted tasks start over, a reconnect keeps its progress, a
//! gate that went away counts only once back (or finished, or checkpointed
//! past the mark).

mod support;

use Colour::*;
use cutover_core::*;
use support::*;

#[test]
fn drained_needs_every_expected_old_gate_past_the_mark() {
    let doc = new_doc(Green, 100);
    let mut state = PipelineState::new(doc);
    let greens = [gate(Green, 0, 2), gate(Green, 1, 2)];
    state
        .attach(SessionId(1), &greens, Epoch(0))
        .expect("attach");
    for g in &greens {
        state
            .progress(SessionId(1), &g.key(), progress(1000))
            .expect("progress");
    }
    apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    let mut request = schedule(Blue, CutoverAt::Earliest);
    request.allowed_lateness = 50;
    apply(&mut state, |s| s.propose_schedule(request)); // at 1100, mark 1150
    state
        .progress(SessionId(1), &greens[0].key(), progress(1200))
        .expect("progress");
    // The job's slowest subtask comes within the margin: the horizon
    // passes the cutover.
    state
        .progress(SessionId(1), &greens[1].key(), progress(1060))
        .expect("progress");
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(doc.phase(), Some(Phase::CuttingOver), "subtask 1 is behind");
    assert_eq!(
        state.propose_complete(),
        Err(CoreError::NotDrained {
            phase: Phase::CuttingOver
        })
    );
    let mut idle = progress(1110);
    idle.idle = true;
    state
        .progress(SessionId(1), &greens[1].key(), idle)
        .expect("progress");
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(
        doc.phase(),
        Some(Phase::Drained),
        "an idle gate counts as drained"
    );
    let doc = apply(&mut state, |s| s.propose_complete());
    assert_eq!(doc.phase(), Some(Phase::Completed));
}

/// `gate` with another operator uid.
#[test]
fn after_a_restart_drained_waits_for_every_operator_of_the_old_colour() {
    let doc = new_doc(Green, 100);
    let mut state = PipelineState::new(doc);
    let sinks = [
        operator_gate(Green, "sink-a"),
        operator_gate(Green, "sink-b"),
    ];
    state
        .attach(SessionId(1), &sinks, Epoch(0))
        .expect("attach");
    advance(&mut state, 1, &sinks, 1000);
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    }); // at 1100
    assert_eq!(
        advance(&mut state, 1, &sinks, 1060),
        Some(Phase::CuttingOver)
    );
    let doc = state.doc().clone();

    // The coordinator restarts: a new state from the stored document, and
    // only sink-a's gate is back, past the cutover.
    let mut restarted = PipelineState::new(doc.clone());
    restarted
        .attach(SessionId(7), &sinks[..1], Epoch(0))
        .expect("attach");
    restarted
        .progress(SessionId(7), &sinks[0].key(), progress(1200))
        .expect("progress");
    let phase = restarted
        .propose_automatic()
        .map_or(doc.phase(), |next| next.phase());
    assert_eq!(
        phase,
        Some(Phase::CuttingOver),
        "sink-b's gate has not reported since the restart"
    );
    restarted
        .attach(SessionId(7), &sinks[1..], Epoch(0))
        .expect("attach");
    restarted
        .progress(SessionId(7), &sinks[1].key(), progress(1200))
        .expect("progress");
    let doc = apply(&mut restarted, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(doc.phase(), Some(Phase::Drained));

    // Completion forgets GREEN's operators (its job is stopped) and records
    // BLUE's, the colour that drains next.
    let blue = operator_gate(Blue, "blue-sink");
    restarted
        .attach(SessionId(8), std::slice::from_ref(&blue), Epoch(0))
        .expect("attach");
    let doc = apply(&mut restarted, |s| s.propose_complete());
    assert!(doc.operators.of(Green).is_empty());
    assert_eq!(
        doc.operators.of(Blue),
        &Operators::from([("blue-sink".to_string(), 1)])
    );
}

#[test]
fn a_restarted_task_must_pass_the_drain_mark_again_a_reconnect_need_not() {
    let mut state = running_pipeline(1000);
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    }); // at 1100
    let green = gate(Green, 0, 1);
    state
        .progress(SessionId(1), &green.key(), progress(1060))
        .expect("progress");
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(doc.phase(), Some(Phase::CuttingOver));
    state
        .progress(SessionId(1), &green.key(), progress(1200))
        .expect("progress");

    // Flink restarts the task from a checkpoint: attempt 1, on a new session.
    let restarted = GateIdentity {
        attempt: 1,
        ..green.clone()
    };
    state
        .attach(SessionId(2), std::slice::from_ref(&restarted), Epoch(0))
        .expect("attach");
    let phase = state
        .propose_automatic()
        .map_or(state.doc().phase(), |next| next.phase());
    assert_eq!(
        phase,
        Some(Phase::CuttingOver),
        "the restarted task replays from behind the cutover"
    );
    assert_eq!(state.status().green.highest_watermark, Key::MIN);

    // The same attempt reconnecting keeps what it reported.
    state
        .progress(SessionId(2), &green.key(), progress(1150))
        .expect("progress");
    state.close_session(SessionId(2));
    state
        .attach(SessionId(3), std::slice::from_ref(&restarted), Epoch(0))
        .expect("attach");
    let doc = apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    assert_eq!(doc.phase(), Some(Phase::Drained));
}

/// A gate of `job`'s operator `uid` (parallelism 1).
fn job_gate(colour: Colour, job: &str, uid: &str) -> GateIdentity {
    GateIdentity {
        job_id: job.into(),
        gate_uid: uid.into(),
        ..gate(colour, 0, 1)
    }
}

/// Reports `watermark` for `gates` on `session`, then installs automatic
/// changes until there are none; the resulting phase.
fn advance(
    state: &mut PipelineState,
    session: u64,
    gates: &[GateIdentity],
    watermark: i64,
) -> Option<Phase> {
    for g in gates {
        state
            .progress(SessionId(session), &g.key(), progress(watermark))
            .expect("progress");
    }
    while let Some(next) = state.propose_automatic() {
        state.install(next).expect("install");
    }
    state.doc().phase()
}

#[test]
fn a_colour_redeployed_without_an_operator_is_not_waited_for_on_it() {
    let doc = new_doc(Blue, 100);
    let mut state = PipelineState::new(doc);
    let blue_v1 = [
        job_gate(Blue, "blue-v1", "a"),
        job_gate(Blue, "blue-v1", "b"),
    ];
    state
        .attach(SessionId(1), &blue_v1, Epoch(0))
        .expect("attach");
    advance(&mut state, 1, &blue_v1, 1000);

    // BLUE → GREEN; BLUE v1 (sinks a and b) is stopped.
    let green = [job_gate(Green, "green-v2", "a")];
    state
        .attach(SessionId(2), &green, Epoch(0))
        .expect("attach");
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Green, CutoverAt::Earliest))
    });
    advance(&mut state, 2, &green, 1300);
    assert_eq!(advance(&mut state, 1, &blue_v1, 1300), Some(Phase::Drained));
    apply(&mut state, |s| s.propose_complete());
    state.close_session(SessionId(1));

    // GREEN → BLUE with a new BLUE job that has sink a only.
    let blue_v3 = [job_gate(Blue, "blue-v3", "a")];
    state
        .attach(SessionId(3), &blue_v3, Epoch(0))
        .expect("attach");
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    advance(&mut state, 3, &blue_v3, 1600);
    assert_eq!(advance(&mut state, 2, &green, 1600), Some(Phase::Drained));
    let doc = apply(&mut state, |s| s.propose_complete());
    assert_eq!(
        doc.operators.of(Blue),
        &Operators::from([("a".to_string(), 1)]),
        "v1's sink b is gone with v1"
    );

    // The next transition drains on sink a alone, also after a restart.
    let mut state = PipelineState::new(doc);
    state
        .attach(SessionId(4), &blue_v3, Epoch(0))
        .expect("attach");
    state
        .attach(SessionId(5), &green, Epoch(0))
        .expect("attach");
    advance(&mut state, 4, &blue_v3, 1600);
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Green, CutoverAt::Earliest))
    });
    advance(&mut state, 5, &green, 2000);
    assert_eq!(advance(&mut state, 4, &blue_v3, 2000), Some(Phase::Drained));
}

#[test]
fn a_gate_that_went_away_is_not_counted_past_the_mark_until_it_is_back() {
    let mut state = running_pipeline(1000);
    apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    }); // at 1100
    let green = gate(Green, 0, 1);
    assert_eq!(
        advance(&mut state, 1, std::slice::from_ref(&green), 1060),
        Some(Phase::CuttingOver)
    );
    state
        .progress(SessionId(1), &green.key(), progress(1200))
        .expect("progress");
    // The task fails before DRAINED is written: its gate leaves, and Flink
    // will restart it from a checkpoint, perhaps behind the cutover.
    state.close_session(SessionId(1));
    let phase = state
        .propose_automatic()
        .map_or(state.doc().phase(), |next| next.phase());
    assert_eq!(phase, Some(Phase::CuttingOver));

    let restarted = GateIdentity {
        attempt: 1,
        ..green
    };
    state
        .attach(SessionId(2), std::slice::from_ref(&restarted), Epoch(0))
        .expect("attach");
    assert_eq!(
        advance(&mut state, 2, &[restarted], 1150),
        Some(Phase::Drained)
    );
}
