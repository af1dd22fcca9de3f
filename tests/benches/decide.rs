//! The per-record cost: `Gate::decide` on a gate holding a real plan from an
//! in-process coordinator (Emit, Drop and Hold keys), and `Plan::decide` on
//! timelines of 1 to 64 segments.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cutover_client::{Client, ClientConfig, Colour, Gate, Key};
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Epoch, Mode, PipelineName, Plan, Timeline};
use cutover_proto::v1;
use cutover_tests::*;

/// A GREEN gate whose plan has a cutover to BLUE at `at`, horizon past it.
async fn gate_with_plan() -> anyhow::Result<(TestCoordinator, Client, Gate, i64)> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let pipeline = PipelineName::new("orders")?;
    let mut green = client.gate(identity("orders", Colour::Green, 0, 1))?;
    green.observe_watermark(Key(10_000));
    let limit = Duration::from_secs(10);
    tokio::time::timeout(limit, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    let mut control = coordinator.control().await?;
    wait_for_status(&mut control, "orders", limit, |s| horizon_of(s) > 10_000).await?;
    let (_, at) = schedule(&mut control, schedule_earliest("orders", v1::Colour::Blue)).await?;
    green.observe_watermark(Key(at + 10));
    let passed =
        wait_for_status(&mut control, "orders", limit, |s| horizon_of(s) > at + 10).await?;
    tokio::time::timeout(
        limit,
        client.wait_for_epoch(&pipeline, Epoch(epoch_of(&passed))),
    )
    .await?;
    Ok((coordinator, client, green, at))
}

fn gate_decide(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (_coordinator, _client, mut gate, at) = runtime
        .block_on(gate_with_plan())
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
