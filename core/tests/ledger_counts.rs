//! Property test: the ledger's per-colour counts, kept as running tallies,
//! always equal the counts recomputed from scratch from every gate — over
//! random attaches (with takeovers, rescales and restarted tasks — another
//! job id or attempt — whose progress starts over), detaches, session ends,
//! acks and progress reports (with and without checkpointed watermarks),
//! including refused ones.

use std::collections::{BTreeMap, HashMap};

use cutover_core::*;
use proptest::prelude::*;

const UIDS: [&str; 2] = ["gate-a", "gate-b"];

#[derive(Clone, Debug)]
enum Op {
    Attach {
        session: u64,
        gates: Vec<(bool, usize, u32)>,
        parallelism: u32,
        job: u8,
        attempt: u32,
        held: u64,
    },
    Detach {
        session: u64,
        gate: (bool, usize, u32),
    },
    Close {
        session: u64,
    },
    Ack {
        session: u64,
        epoch: u64,
    },
    Progress {
        session: u64,
        gate: (bool, usize, u32),
        watermark: i64,
        emitted: u64,
        dropped: u64,
        held: u64,
        checkpointed: Option<i64>,
    },
}

fn gate_ref() -> impl Strategy<Value = (bool, usize, u32)> {
    (any::<bool>(), 0..UIDS.len(), 0u32..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0u64..4,
            proptest::collection::vec(gate_ref(), 1..5),
            1u32..6,
            0u8..2,
            0u32..3,
            0u64..6
        )
            .prop_map(
                |(session, gates, parallelism, job, attempt, held)| Op::Attach {
                    session,
                    gates,
                    parallelism,
                    job,
                    attempt,
                    held
                }
            ),
        (0u64..4, gate_ref()).prop_map(|(session, gate)| Op::Detach { session, gate }),
        (0u64..4).prop_map(|session| Op::Close { session }),
        (0u64..4, 0u64..8).prop_map(|(session, epoch)| Op::Ack { session, epoch }),
        (
            0u64..4,
            gate_ref(),
            -50i64..50,
            0u64..1000,
            0u64..1000,
            0u64..1000,
            proptest::option::of(-50i64..50)
        )
            .prop_map(
                |(session, gate, watermark, emitted, dropped, held, checkpointed)| Op::Progress {
                    session,
                    gate,
                    watermark,
                    emitted,
                    dropped,
                    held,
                    checkpointed,
                }
            ),
    ]
}

fn colour(green: bool) -> Colour {
    if green { Colour::Green } else { Colour::Blue }
}

fn key((green, uid, subtask): (bool, usize, u32)) -> GateKey {
    GateKey {
        colour: colour(green),
        gate_uid: UIDS[uid].to_string(),
        subtask_index: subtask,
    }
}

/// What the test knows independently of the ledger's tallies.
#[derive(Default)]
struct Model {
    /// Acknowledged epoch of each live session.
    acked: HashMap<SessionId, Epoch>,
    /// Latest parallelism per (colour, uid).
    parallelism: BTreeMap<(Colour, String), u32>,
}

impl Model {
    fn ack(&mut self, session: SessionId, epoch: Epoch) {
        let acked = self.acked.entry(session).or_default();
        *acked = (*acked).max(epoch);
    }

    /// The counts, recomputed from every gate the ledger lists.
    fn recount(&self, ledger: &Ledger, colour: Colour, epoch: Epoch) -> ColourGates {
        let gates: Vec<&GateEntry> = ledger
            .gates()
            .filter(|g| g.identity.colour == colour)
            .collect();
        let connected: Vec<&GateEntry> = gates
            .iter()
            .copied()
            .filter(|g| g.session.is_some())
            .collect();
        ColourGates {
            expected: self
                .parallelism
                .iter()
                .filter(|((c, _), _)| *c == colour)
                .map(|(_, p)| p)
                .sum(),
            connected: connected.len() as u32,
            acked: connected
                .iter()
                .filter(|g| {
                    g.session
                        .and_then(|s| self.acked.get(&s))
                        .is_some_and(|&a| a >= epoch)
                })
                .count() as u32,
            lowest_watermark: connected
                .iter()
                .map(|g| g.progress.watermark)
                .min()
                .unwrap_or(Key::MIN),
            highest_watermark: gates
                .iter()
                .map(|g| g.progress.watermark)
                .max()
                .unwrap_or(Key::MIN),
            lowest_checkpointed: connected
                .iter()
                .filter_map(|g| g.progress.checkpointed)
                .min(),
            emitted: gates.iter().map(|g| g.progress.emitted).sum(),
            dropped: gates.iter().map(|g| g.progress.dropped).sum(),
            held: gates.iter().map(|g| g.progress.held).sum(),
        }
    }
}

fn progress(
    watermark: i64,
    emitted: u64,
    dropped: u64,
    held: u64,
    checkpointed: Option<i64>,
) -> GateProgress {
    GateProgress {
        watermark: Key(watermark),
        emitted,
        dropped,
        held,
        checkpointed: checkpointed.map(Key),
        ..GateProgress::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn running_counts_equal_a_full_recount(ops in proptest::collection::vec(op(), 1..120)) {
        let name = PipelineName::new("counts").expect("valid name");
        let mut ledger = Ledger::default();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Attach { session, gates, parallelism, job, attempt, held } => {
                    let identities: Vec<GateIdentity> = gates
                        .iter()
                        .map(|&(green, uid, subtask)| GateIdentity {
                            pipeline: name.clone(),
                            colour: colour(green),
                            job_id: format!("job-{job}"),
                            gate_uid: UIDS[uid].into(),
                            subtask_index: subtask,
                            parallelism,
                            attempt,
                        })
                        .collect();
                    if ledger.attach(SessionId(session), &identities, Epoch(held)).is_ok() {
                        model.ack(SessionId(session), Epoch(held));
                        for identity in &identities {
                            model
                                .parallelism
                                .insert((identity.colour, identity.gate_uid.clone()), parallelism);
                        }
                    }
                }
                Op::Detach { session, gate } => {
                    let _ = ledger.detach(SessionId(session), &[key(gate)]);
                }
                Op::Close { session } => {
                    ledger.close_session(SessionId(session));
                    model.acked.remove(&SessionId(session));
                }
                Op::Ack { session, epoch } => {
                    ledger.ack(SessionId(session), Epoch(epoch));
                    model.ack(SessionId(session), Epoch(epoch));
                }
                Op::Progress { session, gate, watermark, emitted, dropped, held, checkpointed } => {
                    let _ = ledger.progress(
                        SessionId(session),
                        &key(gate),
                        progress(watermark, emitted, dropped, held, checkpointed),
                    );
                }
            }
            for colour in [Colour::Blue, Colour::Green] {
                for epoch in 0..8 {
                    prop_assert_eq!(
                        ledger.colour_gates(colour, Epoch(epoch)),
                        model.recount(&ledger, colour, Epoch(epoch)),
                        "{} at epoch {}", colour, epoch
                    );
                }
            }
        }
    }
}
