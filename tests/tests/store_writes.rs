//! Store writes grow with event time, not with the number of gates: the
//! scripted run of `cutover bench writes` (40 horizon windows and one
//! transition) costs the same writes with 2 and with 32 gates per colour, on
//! every backend: memory, file, etcd (a real one) and ConfigMap (the fake
//! API server) — and the same with three coordinators serving the pipeline
//! together, their concurrent horizon raises resolved without a storm.

use std::sync::Arc;

use cutover_cli::bench::writes::writes_of_a_run;
use cutover_coordinator::store::{
    ConfigMapStore, EtcdOptions, EtcdStore, FileStore, MemoryStore, Store,
};
use cutover_tests::etcd::EtcdServer;
use cutover_tests::kube_api::FakeApiServer;

const WINDOWS: u32 = 40;

async fn check(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let few = writes_of_a_run(store.clone(), 2, WINDOWS).await?;
    let many = writes_of_a_run(store.clone(), 32, WINDOWS).await?;
    println!(
        "{}: {WINDOWS} windows and one transition cost {few} writes with 4 gates, {many} with 64",
        store.describe()
    );
    // Creation, one horizon step per window, schedule, DRAINED, complete.
    let bound = 1 + u64::from(WINDOWS) + 3;
    assert!(
        few <= bound && many <= bound,
        "{few} and {many} writes, at most {bound} expected"
    );
    assert!(
        few.abs_diff(many) <= 1,
        "{few} writes with 4 gates, {many} with 64"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_do_not_grow_with_gates_on_memory_and_file() -> anyhow::Result<()> {
    check(Arc::new(MemoryStore::new())).await?;
    let folder = tempfile::tempdir()?;
    check(Arc::new(FileStore::open(folder.path())?)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_do_not_grow_with_gates_on_etcd() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let store = EtcdStore::connect(EtcdOptions::new(vec![etcd.endpoint.clone()])).await?;
    check(Arc::new(store)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_do_not_grow_with_gates_on_configmaps() -> anyhow::Result<()> {
    let api = FakeApiServer::start().await?;
    check(Arc::new(ConfigMapStore::new(api.client()?, None))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_coordinators_write_no_more_and_no_more_with_gates() -> anyhow::Result<()> {
    use cutover_cli::bench::writes::writes_of_a_fleet_run;
    let folder = tempfile::tempdir()?;
    for store in [
        Arc::new(MemoryStore::new()) as Arc<dyn Store>,
        Arc::new(FileStore::open(folder.path())?),
    ] {
        let few = writes_of_a_fleet_run(store.clone(), 3, 2, WINDOWS).await?;
        let many = writes_of_a_fleet_run(store.clone(), 3, 32, WINDOWS).await?;
        println!(
            "{}: 3 coordinators, 4 gates {few:?}, 64 gates {many:?}",
            store.describe()
        );
        let bound = 1 + u64::from(WINDOWS) + 3;
        assert!(
            few.written <= bound && many.written <= bound,
            "{few:?} {many:?}"
        );
        assert!(few.written.abs_diff(many.written) <= 1, "{few:?} {many:?}");
        // Concurrent raises resolve through compare-and-swap: the losers
        // reload and find nothing left to do, no storm.
        let storm = 2 * (bound + 1);
        assert!(
            few.conflicts <= storm && many.conflicts <= storm,
            "{few:?} {many:?}"
        );
        assert!(many.reports > 0, "the coordinators published reports");
    }
    Ok(())
}
