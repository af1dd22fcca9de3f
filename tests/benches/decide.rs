//! The per-record cost: `Gate::decide` on a gate holding a real plan from an
//! in-process coordinator (Emit, Drop and Hold keys), and `Plan::decide` on
//! timelines of 1 to 64 segments.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cutover_client::{Colour, Key};
use cutover_core::{Epoch, Mode, Plan, Timeline};
use cutover_tests::gate_past_a_cutover;

fn gate_decide(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (_coordinator, _client, mut gate, at) = runtime
        .block_on(gate_past_a_cutover())
        .expect("a gate with a plan");
    let mut group = c.benchmark_group("gate_decide");
    for (name, key) in [("emit", at - 1), ("drop", at), ("hold", at + 1_000_000)] {
        group.bench_function(name, |b| b.iter(|| gate.decide(black_box(Key(key)))));
    }
    group.finish();
}

fn plan_with_segments(segments: i64) -> Plan {
    let mut timeline = Timeline::new(Colour::Green);
    for i in 1..segments {
        let owner = if i % 2 == 1 {
            Colour::Blue
        } else {
            Colour::Green
        };
        timeline = timeline
            .with_appended(Key(i * 1_000), owner)
            .expect("increasing starts, alternating owners");
    }
    Plan {
        timeline,
        horizon: Key(segments * 1_000 + 1_000),
        epoch: Epoch(1),
        mode: Mode::EventTime,
        retired: Default::default(),
        incarnation: Default::default(),
        unknown: Default::default(),
    }
}

fn plan_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_decide");
    for segments in [1, 2, 16, 64] {
        let plan = plan_with_segments(segments);
        let key = Key(segments * 1_000 / 2 + 1);
        group.bench_with_input(BenchmarkId::from_parameter(segments), &key, |b, &key| {
            b.iter(|| plan.decide(Colour::Blue, black_box(key)))
        });
    }
    group.finish();
}

criterion_group!(benches, gate_decide, plan_decide);
criterion_main!(benches);
