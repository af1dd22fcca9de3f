//! Three coordinator processes serve one pipeline on one store, with each
//! job's gate clients spread across them. A transition is scheduled through
//! one, aborted through another, scheduled again through the third and
//! promoted through the second: every change goes through the store's
//! compare-and-swap, so the fence holds and every record is emitted exactly
//! once. DRAINED comes from the three coordinators' reports together (none
//! of them serves all of the old job's gates), whichever coordinator is
//! asked shows the whole fleet's gates, and the transition completes. On
//! the file store and on a real etcd.

use std::time::Duration;

use cutover_client::control::ControlClient;
use cutover_core::{Colour, Key, Phase, PipelineName, ScheduleRequest};
use cutover_tests::etcd::EtcdServer;
use cutover_tests::process::{CoordinatorProcess, QUICK_FLEET};
use cutover_tests::workload::{RunningJob, stream, tally};
use cutover_tests::*;

const LIMIT: Duration = Duration::from_secs(60);
const RECORDS: u32 = 30_000;

async fn control(process: &CoordinatorProcess) -> anyhow::Result<ControlClient> {
    Ok(ControlClient::connect(process.endpoint()).await?)
}

async fn three_coordinators(store: &str, seed: u64) -> anyhow::Result<()> {
    let mut coordinators = Vec::new();
    for _ in 0..3 {
        coordinators.push(CoordinatorProcess::start(store, &QUICK_FLEET).await?);
    }
    let endpoints: Vec<String> = coordinators
        .iter()
        .map(CoordinatorProcess::endpoint)
        .collect();
    let (a, b, c) = (&coordinators[0], &coordinators[1], &coordinators[2]);
    let name = format!("shared-{seed}");
    let pipeline = PipelineName::new(&name)?;
    let spec = stream(RECORDS, seed);
    let total = RECORDS as usize;

    let green = RunningJob::start(endpoints.clone(), &pipeline, &spec, Colour::Green, 6, 3);
    green.reach(total, 0.1).await;
    let rotated: Vec<String> = endpoints.iter().cycle().skip(1).take(3).cloned().collect();
    let blue = RunningJob::start(rotated, &pipeline, &spec, Colour::Blue, 9, 3);
    blue.reach(total, 0.05).await;

    // Schedule through A, far ahead and waiting for promotion.
    let far = loop {
        let mut control_a = control(a).await?;
        let now = control_a.get(&pipeline).await?;
        let at = horizon_of(&now) + 60_000;
        match schedule(&mut control_a, &name, schedule_at(Colour::Blue, at, false)).await {
            Ok(_) => break at,
            Err(e) if e.to_string().contains("below the horizon") => continue,
            Err(e) => return Err(e),
        }
    };
    // B sees it through the store, and aborts it.
    let mut control_b = control(b).await?;
    wait_for_status(&mut control_b, &name, LIMIT, |s| {
        s.transition.as_ref().is_some_and(|t| t.at == Key(far))
    })
    .await?;
    control_b.abort(&pipeline).await?;
    // C sees the abort, and schedules again at EARLIEST, waiting for
    // promotion.
    let mut control_c = control(c).await?;
    wait_for_status(&mut control_c, &name, LIMIT, |s| {
        s.phase == Some(Phase::Aborted)
    })
    .await?;
    let request = ScheduleRequest {
        auto_promote: false,
        ..ScheduleRequest::earliest(Colour::Blue)
    };
    let (_, at) = schedule(&mut control_c, &name, request).await?;
    // B promotes; A sees the cutover pass.
    wait_for_status(&mut control_b, &name, LIMIT, |s| {
        s.transition.as_ref().is_some_and(|t| t.at == Key(at))
    })
    .await?;
    control_b.promote(&pipeline).await?;
    let mut control_a = control(a).await?;
    let passed = wait_for_status(&mut control_a, &name, LIMIT, |s| horizon_of(s) > at).await?;
    let segments = passed.plan.timeline.segments().len();
    assert_eq!(
        segments, 2,
        "one cutover in the plan: the aborted one left no trace"
    );

    // Each coordinator serves a third of each job's gates: DRAINED comes
    // from their reports together, and each shows the whole fleet.
    let drained = wait_for_status(&mut control_a, &name, LIMIT, |s| {
        s.phase == Some(Phase::Drained)
    })
    .await?;
    assert_eq!(drained.green.expected, 6);
    for process in [a, b, c] {
        let status = control(process).await?.get(&pipeline).await?;
        assert_eq!(
            (status.green.expected, status.blue.expected),
            (6, 9),
            "every coordinator counts the fleet's gates"
        );
        // And names who serves them: itself first, then the two others,
        // live, their gates adding up to the fleet's.
        assert_eq!(status.serving.len(), 3, "{:?}", status.serving);
        assert!(status.serving[0].answering);
        assert!(
            status.serving.iter().all(|c| c.live),
            "{:?}",
            status.serving
        );
        let served: u32 = status.serving.iter().map(|c| c.blue + c.green).sum();
        assert_eq!(served, status.blue.connected + status.green.connected);
    }
    // Each coordinator answers from its own view of the store: C completes
    // once it has seen DRAINED too (A may have seen it first).
    let mut control_c = control(c).await?;
    wait_for_status(&mut control_c, &name, LIMIT, |s| {
        s.phase == Some(Phase::Drained)
    })
    .await?;
    let completed = control_c.complete(&pipeline).await?;
    assert_eq!(completed.phase, Some(Phase::Completed));

    let (green, blue) = (green.finish().await?, blue.finish().await?);
    let (duplicates, gaps) = tally(total, &green, &blue);
    println!(
        "{store}: GREEN emitted {}, BLUE emitted {}, duplicates {duplicates}, gaps {gaps}",
        green.emitted.len(),
        blue.emitted.len()
    );
    assert_eq!((duplicates, gaps), (0, 0));
    assert!(!green.emitted.is_empty() && !blue.emitted.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_coordinators_on_one_file_store() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    three_coordinators(&format!("file:{}", dir.path().display()), 21).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_coordinators_on_one_etcd() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    three_coordinators(&format!("etcd:{}", etcd.endpoint), 22).await
}
