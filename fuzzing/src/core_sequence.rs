//! Arbitrary sequences of session and control messages driven into one
//! pipeline's core, as a coordinator would feed it. After every document
//! the core proposes: it installs (the core's own successor check), and an
//! independent fence check holds on a set of keys — once a key lies below
//! the horizon, its emitter may only be lost, once, never gained or
//! changed, and the horizon never falls.

use std::collections::BTreeMap;

use cutover_core::{
    Colour, CutoverAt, Epoch, GateIdentity, GateProgress, HorizonPolicy, Incarnation, Key, Mode,
    PipelineDoc, PipelineName, PipelineState, ScheduleRequest, SessionId,
};

use crate::bytes::Input;

/// Messages applied per input at most.
const MAX_STEPS: usize = 256;

/// The keys the fence check follows.
const WATCHED: [i64; 12] = [
    i64::MIN,
    -1,
    0,
    1,
    500,
    999,
    1_000,
    1_500,
    5_000,
    25_500,
    1 << 40,
    i64::MAX - 1,
];

/// Runs the messages `data` encodes.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let name = PipelineName::new("orders").expect("a valid name");
    let owner = if input.flag() {
        Colour::Blue
    } else {
        Colour::Green
    };
    let doc = PipelineDoc::new(
        name.clone(),
        owner,
        HorizonPolicy::with_window(1_000),
        Incarnation(1),
    );
    let mut world = World {
        core: PipelineState::new(doc),
        name,
        fixed: BTreeMap::new(),
    };
    world.check();
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        world.step(&mut input);
    }
}

struct World {
    core: PipelineState,
    name: PipelineName,
    /// Per watched key below the horizon: the emitter it had when it first
    /// lay below it, and whether it has lost it since.
    fixed: BTreeMap<i64, (Option<Colour>, bool)>,
}

impl World {
    fn step(&mut self, input: &mut Input<'_>) {
        let session = SessionId(u64::from(input.below(3)));
        match input.below(12) {
            0 => {
                let gates: Vec<GateIdentity> =
                    (0..=input.below(3)).map(|_| self.gate(input)).collect();
                let held = Epoch(u64::from(input.below(8)));
                let _ = self.core.attach(session, &gates, held);
            }
            1 => {
                let gate = self.gate(input).key();
                let _ = self.core.detach(session, &[gate]);
            }
            2 => self.core.close_session(session),
            3 => {
                let epoch = match input.below(3) {
                    0 => self.core.doc().epoch(),
                    1 => Epoch(self.core.doc().epoch().0.saturating_sub(1)),
                    _ => Epoch(u64::from(input.byte())),
                };
                let _ = self.core.ack(session, epoch);
            }
            4 => {
                let gate = self.gate(input).key();
                let progress = progress(input);
                let _ = self.core.progress(session, &gate, progress);
            }
            5 => {
                let gate = self.gate(input).key();
                let (key, watermark) = (input.key(), input.key());
                let _ = self.core.horizon_request(session, &gate, key, watermark);
            }
            6 => {
                let request = schedule(input);
                let proposed = self.core.propose_schedule(request);
                self.propose(proposed.ok());
            }
            7 => {
                let proposed = self.core.propose_abort();
                self.propose(proposed.ok());
            }
            8 => {
                let proposed = self.core.propose_promote();
                self.propose(proposed.ok());
            }
            9 => {
                let proposed = self.core.propose_complete();
                self.propose(proposed.ok());
            }
            10 => {
                let colour = colour(input);
                let uid = uid(input);
                if let Ok(next) = self.core.propose_forget_operator(colour, &uid) {
                    self.propose(Some(next));
                    let _ = self.core.forget_operator_gates(colour, &uid);
                }
            }
            _ => {
                // The driver: whatever the pipeline wants on its own.
                for _ in 0..4 {
                    let proposed = self.core.propose_automatic();
                    if proposed.is_none() {
                        break;
                    }
                    self.propose(proposed);
                }
            }
        }
        let _ = self.core.status();
    }

    fn gate(&self, input: &mut Input<'_>) -> GateIdentity {
        let parallelism = 1 + u32::from(input.below(3));
        GateIdentity {
            pipeline: self.name.clone(),
            colour: colour(input),
            job_id: format!("job-{}", input.below(2)),
            gate_uid: uid(input),
            subtask_index: u32::from(input.below(3)),
            parallelism,
            attempt: u32::from(input.below(2)),
        }
    }

    /// Installs a document the core proposed, as the coordinator does once
    /// the store took it, and checks the fence.
    fn propose(&mut self, next: Option<PipelineDoc>) {
        let Some(next) = next else {
            return;
        };
        let before_horizon = self.core.doc().horizon();
        if let Err(e) = self.core.install(next) {
            panic!("the core refused its own proposal: {e}");
        }
        assert!(
            self.core.doc().horizon() >= before_horizon,
            "the horizon fell from {before_horizon} to {}",
            self.core.doc().horizon()
        );
        self.check();
    }

    fn check(&mut self) {
        let doc = self.core.doc();
        assert!(doc.validate().is_ok(), "an installed document is invalid");
        let plan = &doc.plan;
        for key in WATCHED {
            if Key(key) >= plan.horizon {
                continue;
            }
            let now = plan.emitter(Key(key));
            match self.fixed.get_mut(&key) {
                None => {
                    self.fixed.insert(key, (now, false));
                }
                Some((first, lost)) => match now {
                    None => *lost = true,
                    Some(colour) => {
                        assert_eq!(
                            Some(colour),
                            *first,
                            "key {key} below the horizon changed its emitter"
                        );
                        assert!(!*lost, "key {key} regained an emitter it had lost");
                    }
                },
            }
        }
    }
}

fn colour(input: &mut Input<'_>) -> Colour {
    if input.flag() {
        Colour::Blue
    } else {
        Colour::Green
    }
}

fn uid(input: &mut Input<'_>) -> String {
    format!("gate-{}", input.below(2))
}

fn progress(input: &mut Input<'_>) -> GateProgress {
    let watermark = input.key();
    let held = input.below(3);
    GateProgress {
        watermark,
        max_key: input.key(),
        emitted: u64::from(input.byte()),
        dropped: u64::from(input.byte()),
        held: u64::from(held),
        idle: input.below(8) == 0,
        finished: input.below(8) == 0,
        lowest_held: (held > 0).then(|| input.key()),
        checkpointed: input.flag().then(|| input.key()),
    }
}

fn schedule(input: &mut Input<'_>) -> ScheduleRequest {
    ScheduleRequest {
        target: colour(input),
        at: if input.flag() {
            CutoverAt::Earliest
        } else {
            CutoverAt::Key(input.key())
        },
        mode: if input.below(3) == 0 {
            Mode::Watermark
        } else {
            Mode::EventTime
        },
        allowed_lateness: u64::from(input.below(4)) * 500,
        auto_promote: input.flag(),
    }
}
