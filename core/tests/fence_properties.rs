//! Property tests: over random sequences of control requests, gate progress
//! (with and without checkpoints) and automatic horizon moves, no installed
//! document ever changes the emitter of a key below a horizon installed
//! before it, except by retiring it (then no colour emits it, for good), and
//! every decision a gate made (Emit or Drop) is the one the final plan gives,
//! unless the final plan retired that key for that colour.

mod support;

use cutover_core::*;
use proptest::prelude::*;
use support::*;

#[derive(Clone, Debug)]
enum Op {
    Schedule {
        blue: bool,
        at: Option<i64>,
        auto: bool,
        lateness: u64,
    },
    Abort,
    Promote,
    Complete,
    Progress {
        green: bool,
        subtask: u32,
        watermark_step: i64,
        hold: Option<i64>,
        checkpoint_lag: Option<i64>,
    },
    /// Every gate moves its watermark by the step (a job's steady progress).
    ProgressAll {
        watermark_step: i64,
    },
    Automatic,
    Decide {
        green: bool,
        key: i64,
    },
    Reconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            any::<bool>(),
            proptest::option::of(0i64..3000),
            any::<bool>(),
            0u64..200
        )
            .prop_map(|(blue, at, auto, lateness)| Op::Schedule {
                blue,
                at,
                auto,
                lateness
            }),
        Just(Op::Abort),
        Just(Op::Promote),
        Just(Op::Complete),
        (
            any::<bool>(),
            0u32..3,
            -20i64..120,
            proptest::option::of(0i64..5000),
            proptest::option::of(0i64..400),
        )
            .prop_map(|(green, subtask, watermark_step, hold, checkpoint_lag)| {
                Op::Progress {
                    green,
                    subtask,
                    watermark_step,
                    hold,
                    checkpoint_lag,
                }
            }),
        (0i64..300).prop_map(|watermark_step| Op::ProgressAll { watermark_step }),
        Just(Op::Automatic),
        Just(Op::Automatic),
        (any::<bool>(), -100i64..3000).prop_map(|(green, key)| Op::Decide { green, key }),
        Just(Op::Reconnect),
    ]
}

fn colour(green: bool) -> Colour {
    if green { Colour::Green } else { Colour::Blue }
}

/// Keys below `below` worth comparing: a grid plus both plans' segment
/// boundaries and floors and the keys just before them.
fn sample_keys(a: &Plan, b: &Plan, below: Key) -> Vec<Key> {
    let mut keys: Vec<i64> = (-100..3200).step_by(7).collect();
    let floors = [a.retired, b.retired]
        .into_iter()
        .flat_map(|r| [r.blue, r.green]);
    for start in a
        .timeline
        .segments()
        .iter()
        .chain(b.timeline.segments())
        .map(|s| s.start)
        .chain(floors)
    {
        keys.push(start.0);
        keys.push(start.0.saturating_sub(1));
    }
    keys.into_iter().map(Key).filter(|&k| k < below).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn below_the_horizon_a_key_only_ever_loses_its_emitter_once(ops in proptest::collection::vec(op(), 1..200)) {
        let mut state = PipelineState::new(new_doc(Colour::Green, 100));
        let gates: Vec<GateIdentity> = (0..3)
            .flat_map(|i| [gate(Colour::Green, i, 3), gate(Colour::Blue, i, 3)])
            .collect();
        let mut session = 1;
        state.attach(SessionId(session), &gates, Epoch(0)).expect("attach");
        let mut watermarks = std::collections::HashMap::new();
        let mut decisions: Vec<(Colour, Key, Decision)> = Vec::new();

        for op in ops {
            let before = state.doc().clone();
            let proposal = match op {
                Op::Schedule { blue, at, auto, lateness } => Some(state.propose_schedule(ScheduleRequest {
                    target: colour(!blue),
                    at: at.map_or(CutoverAt::Earliest, |k| CutoverAt::Key(Key(k))),
                    mode: Mode::EventTime,
                    allowed_lateness: lateness,
                    auto_promote: auto,
                })),
                Op::Abort => Some(state.propose_abort()),
                Op::Promote => Some(state.propose_promote()),
                Op::Complete => Some(state.propose_complete()),
                Op::Automatic => state.propose_automatic().map(Ok),
                Op::Progress { green, subtask, watermark_step, hold, checkpoint_lag } => {
                    let g = gate(colour(green), subtask, 3);
                    let wm = watermarks.entry(g.key()).or_insert(0i64);
                    *wm += watermark_step;
                    let mut p = progress(*wm);
                    p.lowest_held = hold.map(Key);
                    p.checkpointed = checkpoint_lag.map(|lag| Key(*wm - lag));
                    state.progress(SessionId(session), &g.key(), p).expect("gate is attached");
                    None
                }
                Op::ProgressAll { watermark_step } => {
                    for g in &gates {
                        let wm = watermarks.entry(g.key()).or_insert(0i64);
                        *wm += watermark_step;
                        state.progress(SessionId(session), &g.key(), progress(*wm)).expect("gate is attached");
                    }
                    None
                }
                Op::Decide { green, key } => {
                    let decision = state.doc().plan.decide(colour(green), Key(key));
                    if decision != Decision::Hold {
                        decisions.push((colour(green), Key(key), decision));
                    }
                    None
                }
                Op::Reconnect => {
                    state.close_session(SessionId(session));
                    session += 1;
                    state.attach(SessionId(session), &gates, state.doc().epoch()).expect("re-attach");
                    None
                }
            };
            match proposal {
                Some(Ok(next)) => {
                    state.install(next.clone()).expect("a proposal always installs");
                    prop_assert!(next.epoch() > before.epoch());
                    prop_assert!(next.horizon() >= before.horizon());
                    for c in Colour::ALL {
                        prop_assert!(next.plan.retired.of(c) >= before.plan.retired.of(c));
                    }
                    for key in sample_keys(&before.plan, &next.plan, before.horizon()) {
                        let (was, now) = (before.plan.emitter(key), next.plan.emitter(key));
                        prop_assert!(
                            now.is_none() || now == was,
                            "emitter of {} went from {:?} to {:?} below horizon {}", key, was, now, before.horizon()
                        );
                    }
                }
                Some(Err(_)) => prop_assert_eq!(state.doc(), &before, "a refusal changes nothing"),
                None => {}
            }
        }
        let last = &state.doc().plan;
        for (colour, key, decision) in decisions {
            let now = last.decide(colour, key);
            let retired = decision == Decision::Emit && now == Decision::Drop && key < last.retired.of(colour);
            prop_assert!(now == decision || retired, "decision of {} at {} changed from {:?} to {:?}", colour, key, decision, now);
        }
    }
}
