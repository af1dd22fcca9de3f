//! `Gate::decide` allocates nothing: a counting global allocator counts the
//! allocations of the calling thread across a million decisions (Emit, Drop
//! and Hold keys alike) on a gate holding a real plan from a coordinator.

use cutover_client::{Decision, Key};
use cutover_tests::counting_alloc::{CountingAlloc, is_active, thread_allocations};
use cutover_tests::gate_past_a_cutover;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_allocates_nothing() -> anyhow::Result<()> {
    let (_coordinator, _client, mut green, at) = gate_past_a_cutover().await?;
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
