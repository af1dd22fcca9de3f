//! The demo workload end to end (smaller than `cutover demo`'s default):
//! two simulated jobs with different parallelism over real gate clients,
//! a cutover at EARLIEST while both run, every record emitted exactly once —
//! also with three coordinators on one store, one of them stopped while
//! the transition runs, and over mutual TLS.

use cutover_cli::demo::DemoArgs;

fn args(records: u32, seed: u64, watermark_mode: bool) -> DemoArgs {
    DemoArgs {
        records,
        green_parallelism: 3,
        blue_parallelism: 5,
        store: None,
        store_options: Default::default(),
        horizon_window: std::time::Duration::from_secs(5),
        watermark_mode,
        seed,
        json: false,
        coordinators: 1,
        mutual_tls: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_time_mode_emits_every_record_exactly_once() -> anyhow::Result<()> {
    for seed in [1, 2] {
        let summary = args(30_000, seed, false).execute().await?;
        assert_eq!(
            (summary.duplicates, summary.gaps),
            (0, 0),
            "seed {seed}: {summary:?}"
        );
        assert!(
            summary.emitted_blue > 0 && summary.emitted_green > 0,
            "both colours emit: {summary:?}"
        );
        assert_eq!(summary.emitted_blue + summary.emitted_green, 30_000);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_mode_runs_and_reports_its_errors() -> anyhow::Result<()> {
    // WATERMARK mode has no exactly-once guarantee; the run must complete
    // and account for every record either way.
    let summary = args(30_000, 3, true).execute().await?;
    assert_eq!(summary.mode, "WATERMARK");
    let accounted =
        summary.emitted_blue + summary.emitted_green + summary.gaps - summary.duplicates;
    assert_eq!(accounted, 30_000, "{summary:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_coordinators_one_stopped_mid_run_emit_every_record_exactly_once()
-> anyhow::Result<()> {
    let summary = DemoArgs {
        coordinators: 3,
        ..args(30_000, 4, false)
    }
    .execute()
    .await?;
    assert_eq!((summary.duplicates, summary.gaps), (0, 0), "{summary:?}");
    assert_eq!((summary.coordinators, summary.coordinators_stopped), (3, 1));
    assert!(
        summary.report_writes > 0,
        "the coordinators reported: {summary:?}"
    );
    assert_eq!(summary.emitted_blue + summary.emitted_green, 30_000);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mutual_tls_every_record_is_emitted_exactly_once() -> anyhow::Result<()> {
    let summary = DemoArgs {
        mutual_tls: true,
        ..args(20_000, 5, false)
    }
    .execute()
    .await?;
    assert_eq!(summary.transport, "mutual TLS");
    assert_eq!((summary.duplicates, summary.gaps), (0, 0), "{summary:?}");
    assert_eq!(summary.emitted_blue + summary.emitted_green, 20_000);
    Ok(())
}
