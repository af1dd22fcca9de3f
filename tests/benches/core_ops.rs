//! The coordinator's protocol core per gate count: applying an ack, applying
//! a progress report, proposing a schedule, proposing the automatic change
//! (horizon, DRAINED, compaction) — also while cutting over, when the
//! DRAINED check walks the old colour's gates — and installing a snapshot in
//! a client.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cutover_client::apply::{Frame, apply};
use cutover_core::{
    Colour, CutoverAt, Epoch, GateIdentity, GateProgress, HorizonPolicy, Key, Mode, PipelineDoc,
    PipelineName, PipelineState, ScheduleRequest, SessionId,
};

const GATE_COUNTS: [u32; 3] = [100, 1_000, 10_000];
const GATES_PER_SESSION: u32 = 100;

/// A pipeline with `gates` GREEN gates, 100 per session, all at watermark
/// 10,000, and a first horizon.
fn pipeline(gates: u32) -> (PipelineState, Vec<GateIdentity>) {
    let name = PipelineName::new("orders").expect("valid");
    let doc = PipelineDoc::new(
        name.clone(),
        Colour::Green,
        HorizonPolicy::with_window(1_000),
        cutover_core::Incarnation(1),
    );
    let mut state = PipelineState::new(doc);
    let identities: Vec<GateIdentity> = (0..gates)
        .map(|i| GateIdentity {
            pipeline: name.clone(),
            colour: Colour::Green,
            job_id: "green".into(),
            gate_uid: "gate".into(),
            subtask_index: i,
            parallelism: gates,
            attempt: 0,
        })
        .collect();
    for (session, chunk) in identities.chunks(GATES_PER_SESSION as usize).enumerate() {
        state
            .attach(SessionId(session as u64), chunk, Epoch(0))
            .expect("attach");
    }
    for (i, gate) in identities.iter().enumerate() {
        let session = SessionId((i / GATES_PER_SESSION as usize) as u64);
        state
            .progress(session, &gate.key(), progress(10_000))
            .expect("progress");
    }
    let next = state.propose_automatic().expect("a first horizon");
    state.install(next).expect("install");
    (state, identities)
}

fn progress(watermark: i64) -> GateProgress {
    GateProgress {
        watermark: Key(watermark),
        max_key: Key(watermark),
        ..GateProgress::default()
    }
}

fn core_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    for gates in GATE_COUNTS {
        let (state, identities) = pipeline(gates);
        let epoch = state.doc().epoch();
        group.bench_with_input(BenchmarkId::new("ack", gates), &gates, |b, _| {
            let mut state = state.clone();
            b.iter(|| state.ack(black_box(SessionId(0)), epoch))
        });
        let last = identities.last().expect("gates").key();
        let session = SessionId(u64::from((gates - 1) / GATES_PER_SESSION));
        group.bench_with_input(BenchmarkId::new("progress", gates), &gates, |b, _| {
            let mut state = state.clone();
            let mut watermark = 10_000;
            b.iter(|| {
                watermark += 1;
                state.progress(session, &last, progress(black_box(watermark)))
            })
        });
        let request = ScheduleRequest {
            target: Colour::Blue,
            at: CutoverAt::Earliest,
            mode: Mode::EventTime,
            allowed_lateness: 0,
            auto_promote: true,
        };
        group.bench_with_input(
            BenchmarkId::new("propose_schedule", gates),
            &gates,
            |b, _| b.iter(|| state.propose_schedule(black_box(request))),
        );
        group.bench_with_input(
            BenchmarkId::new("propose_automatic", gates),
            &gates,
            |b, _| b.iter(|| state.propose_automatic()),
        );
        // Cutting over, every gate still short of the cutover: the DRAINED
        // check walks the old colour's gates on every automatic proposal.
        let mut cutting_over = state.clone();
        let scheduled = cutting_over
            .propose_schedule(request)
            .expect("schedule at the horizon");
        let at = scheduled.transition.as_ref().map_or(Key::MIN, |t| t.at);
        cutting_over.install(scheduled).expect("install");
        let mut horizon = cutting_over.doc().clone();
        horizon.plan.epoch = horizon.plan.epoch.next();
        horizon.plan.horizon = at.saturating_add(1);
        cutting_over
            .install(horizon)
            .expect("install a horizon past the cutover");
        group.bench_with_input(
            BenchmarkId::new("propose_automatic_cutting_over", gates),
            &gates,
            |b, _| b.iter(|| cutting_over.propose_automatic()),
        );
    }
    group.finish();

    let (state, _) = pipeline(1);
    let plan = state.doc().plan.clone();
    c.bench_function("client_install_snapshot", |b| {
        b.iter(|| apply(None, Frame::Snapshot(black_box(plan.clone()))))
    });
}

criterion_group!(benches, core_ops);
criterion_main!(benches);
