//! `Gate::decide` allocates nothing: a counting global allocator counts the
//! allocations of the calling thread across a million decisions (Emit, Drop
//! and Hold keys alike) on a gate holding a real plan from a coordinator.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour, Decision, Key};
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Epoch, PipelineName};
use cutover_proto::v1;
use cutover_tests::counting_alloc::{CountingAlloc, is_active, thread_allocations};
use cutover_tests::*;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_allocates_nothing() -> anyhow::Result<()> {
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
    // GREEN moves past the cutover: below it GREEN emits, from it on BLUE
    // owns (GREEN drops), and far ahead everything is held.
    green.observe_watermark(Key(at + 10));
    let passed =
        wait_for_status(&mut control, "orders", limit, |s| horizon_of(s) > at + 10).await?;
    tokio::time::timeout(
        limit,
        client.wait_for_epoch(&pipeline, Epoch(epoch_of(&passed))),
    )
    .await?;
    let keys = [Key(at - 1), Key(at), Key(at + 1_000_000), Key(i64::MIN)];
    let expected = [
        Decision::Emit,
        Decision::Drop,
        Decision::Hold,
        Decision::Emit,
    ];
    for (key, decision) in keys.iter().zip(expected) {
        assert_eq!(green.peek(*key), decision, "key {key}");
    }
    // The first Hold publishes the lowest held key once (it may allocate in
    // the notification); warm that path, then count.
    for key in keys {
        green.decide(key);
    }
    assert!(is_active(), "the counting allocator is installed");
    let (rounds, before) = (250_000, thread_allocations());
    let mut emitted = 0u64;
    for _ in 0..rounds {
        for key in keys {
            emitted += u64::from(green.decide(std::hint::black_box(key)) == Decision::Emit);
        }
    }
    let allocated = thread_allocations() - before;
    assert_eq!(emitted, 2 * rounds, "the decisions were made");
    assert_eq!(
        allocated,
        0,
        "{allocated} allocations in {} decisions",
        4 * rounds
    );
    Ok(())
}
