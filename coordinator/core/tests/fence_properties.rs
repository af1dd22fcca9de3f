//! Property tests: over random sequences of control requests, gate progress
//! and automatic horizon moves, no installed document ever changes the owner
//! of a key below a horizon installed before it (compaction aside, which
//! only merges keys every gate is past), and every decision a gate made (Emit
//! or Drop) on a key above the compaction floor is the one the final plan
//! gives.

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
            proptest::option::of(0i64..5000)
        )
            .prop_map(|(green, subtask, watermark_step, hold)| Op::Progress {
                green,
                subtask,
                watermark_step,
                hold
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

/// Keys below `below` worth comparing: a grid plus both timelines' segment
/// boundaries and the keys just before them.
fn sample_keys(a: &Timeline, b: &Timeline, below: Key) -> Vec<Key> {
    let mut keys: Vec<i64> = (-100..3200).step_by(7).collect();
    for s in a.segments().iter().chain(b.segments()) {
        keys.push(s.start.0);
        keys.push(s.start.0.saturating_sub(1));
    }
    keys.into_iter().map(Key).filter(|&k| k < below).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_change_ever_alters_an_owner_below_the_horizon(ops in proptest::collection::vec(op(), 1..200)) {
        let mut state = PipelineState::new(PipelineDoc::new(name(), Colour::Green, HorizonPolicy::with_window(100)));
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
                Op::Progress { green, subtask, watermark_step, hold } => {
                    let g = gate(colour(green), subtask, 3);
                    let wm = watermarks.entry(g.key()).or_insert(0i64);
                    *wm += watermark_step;
                    let mut p = progress(*wm);
                    p.lowest_held = hold.map(Key);
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
                    prop_assert!(next.compacted_below >= before.compacted_below);
                    if next.compacted_below > before.compacted_below {
                        // Compaction only below what every known gate is past.
                        for g in state.ledger().gates() {
                            prop_assert!(
                                g.progress.watermark >= next.compacted_below,
                                "compacted at {} with {} at watermark {}",
                                next.compacted_below, g.identity.key(), g.progress.watermark
                            );
                        }
                    }
                    let floor = next.compacted_below;
                    for key in sample_keys(&before.plan.timeline, &next.plan.timeline, before.horizon())
                        .into_iter()
                        .filter(|&k| k >= floor)
                    {
                        prop_assert_eq!(
                            before.plan.timeline.owner_of(key),
                            next.plan.timeline.owner_of(key),
                            "owner of {} changed below horizon {}", key, before.horizon()
                        );
                    }
                }
                Some(Err(_)) => prop_assert_eq!(state.doc(), &before, "a refusal changes nothing"),
                None => {}
            }
        }
        let last = &state.doc().plan;
        let floor = state.doc().compacted_below;
        for (colour, key, decision) in decisions.into_iter().filter(|&(_, k, _)| k >= floor) {
            let owner = last.timeline.owner_of(key);
            let expected = if owner == colour { Decision::Emit } else { Decision::Drop };
            prop_assert_eq!(decision, expected, "decision for {} at {} changed", colour, key);
        }
    }
}
