//! The file store: compare-and-swap semantics, several processes on one
//! folder, watches, and content it must not touch.

use std::time::Duration;

use cutover_coordinator::store::{CasOutcome, FileStore, Store, StoreError, Version};
use cutover_core::{Colour, HorizonPolicy, PipelineDoc, PipelineName};
use futures::StreamExt;

fn doc(name: &PipelineName) -> PipelineDoc {
    PipelineDoc::new(
        name.clone(),
        Colour::Green,
        HorizonPolicy::default(),
        cutover_core::Incarnation(1),
    )
}

fn written(outcome: CasOutcome) -> Version {
    match outcome {
        CasOutcome::Written(version) => version,
        CasOutcome::Conflict(current) => panic!("unexpected conflict, stored: {current:?}"),
    }
}

#[tokio::test]
async fn compare_and_swap_refuses_a_stale_version_and_reports_what_is_stored() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let store = FileStore::open(dir.path())?;
    let name = PipelineName::new("orders")?;
    assert_eq!(store.load(&name).await?, None);
    let first = written(store.compare_and_swap(&name, None, &doc(&name)).await?);
    // Creating twice conflicts.
    assert!(matches!(
        store.compare_and_swap(&name, None, &doc(&name)).await?,
        CasOutcome::Conflict(Some(_))
    ));
    let mut next = doc(&name);
    next.plan.epoch = next.plan.epoch.next();
    let second = written(store.compare_and_swap(&name, Some(&first), &next).await?);
    assert_ne!(first, second);
    // A writer still holding `first` loses, and learns what is stored.
    match store
        .compare_and_swap(&name, Some(&first), &doc(&name))
        .await?
    {
        CasOutcome::Conflict(Some(stored)) => {
            assert_eq!(stored.version, second);
            assert_eq!(stored.doc, next);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.list().await?, vec![name.clone()]);
    Ok(())
}

#[tokio::test]
async fn two_store_handles_on_one_folder_behave_like_two_processes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = FileStore::open(dir.path())?.with_poll_interval(Duration::from_millis(10));
    let b = FileStore::open(dir.path())?;
    let name = PipelineName::new("orders")?;
    let mut watch = a.watch(&name);
    assert_eq!(
        watch.next().await.transpose()?,
        Some(None),
        "nothing stored yet"
    );
    let version = written(b.compare_and_swap(&name, None, &doc(&name)).await?);
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await?
        .transpose()?;
    assert_eq!(seen.flatten().map(|s| s.version), Some(version.clone()));
    // Concurrent writers from the same version: exactly one wins.
    let mut next = doc(&name);
    next.plan.epoch = next.plan.epoch.next();
    let (ra, rb) = tokio::join!(
        a.compare_and_swap(&name, Some(&version), &next),
        b.compare_and_swap(&name, Some(&version), &next)
    );
    let wins = [ra?, rb?]
        .iter()
        .filter(|o| matches!(o, CasOutcome::Written(_)))
        .count();
    assert_eq!(wins, 1);
    Ok(())
}

#[tokio::test]
async fn foreign_content_is_reported_and_left_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = FileStore::open(dir.path())?;
    let name = PipelineName::new("orders")?;
    // A valid document of another pipeline under this name.
    let other = PipelineName::new("payments")?;
    let foreign = serde_json::json!({ "revision": 3, "document": doc(&other) }).to_string();
    std::fs::write(store.path_of(&name), &foreign)?;
    let error = store.load(&name).await.expect_err("foreign content");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(
        error.to_string().contains("holds pipeline payments"),
        "{error}"
    );
    assert!(
        store
            .compare_and_swap(&name, None, &doc(&name))
            .await
            .is_err()
    );
    assert!(
        store
            .compare_and_swap(&name, Some(&Version::new("3")), &doc(&name))
            .await
            .is_err()
    );
    assert_eq!(std::fs::read_to_string(store.path_of(&name))?, foreign);
    // A future schema is refused too.
    let mut future = doc(&name);
    future.schema = 99;
    std::fs::write(
        store.path_of(&name),
        serde_json::json!({ "revision": 1, "document": future }).to_string(),
    )?;
    let error = store.load(&name).await.expect_err("future schema");
    assert!(error.to_string().contains("schema 99"), "{error}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_watch_whose_reads_fail_backs_off_instead_of_spinning() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = FileStore::open(dir.path())?.with_poll_interval(Duration::from_millis(200));
    let name = PipelineName::new("orders")?;
    let path = store.path_of(&name);
    std::fs::write(&path, b"{ not json")?;
    let mut watch = store.watch(&name);
    let started = tokio::time::Instant::now();
    for _ in 0..8 {
        assert!(matches!(
            watch.next().await,
            Some(Err(StoreError::Corrupt { .. }))
        ));
    }
    // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 5 + 5 s between the eight failed reads
    // (virtual time): a failing watch reads about once per 5 s, not in a loop.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(15_200), "{waited:?}");
    // Repaired: reported at the next read.
    let good = doc(&name);
    std::fs::remove_file(&path)?;
    written(store.compare_and_swap(&name, None, &good).await?);
    match watch.next().await {
        Some(Ok(Some(stored))) => assert_eq!(stored.doc, good),
        other => panic!("expected the repaired document, got {other:?}"),
    }
    Ok(())
}
