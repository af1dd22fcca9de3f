//! A fleet on real processes and real links: network namespaces stand for
//! clusters and the store's host (a real etcd), each coordinator and each
//! job process runs inside its cluster, and gates dial their own cluster's
//! coordinators. Links are cut with `ip link set ... down`, replicas are
//! killed with SIGKILL and paused with SIGSTOP. Every scenario counts what
//! the two jobs emitted: 0 duplicates and 0 gaps. Needs root (CI runs as
//! root): without it every test fails with the reason.

use std::time::{Duration, Instant};

use cutover_client::control::ControlClient;
use cutover_core::{Colour, Key, Phase, PipelineName, PipelineStatus, ScheduleRequest};
use cutover_tests::etcd::EtcdServer;
use cutover_tests::netns::{Host, Network};
use cutover_tests::process::{CoordinatorProcess, QUICK_FLEET};
use cutover_tests::workload::{JobProcess, JobProcessSpec, tally_ids};

const LIMIT: Duration = Duration::from_secs(60);
const PORT: u16 = 7000;

/// The store's host with etcd, and the store flag that reaches it.
async fn store_host(network: &mut Network) -> anyhow::Result<(Host, EtcdServer, String)> {
    let host = network.host("store")?;
    let etcd = EtcdServer::start_in(&host).await?;
    let store = format!("etcd:{}", etcd.endpoint);
    Ok((host, etcd, store))
}

/// `n` coordinators inside `host` on ports 7000, 7001, ...
async fn coordinators_in(
    host: &Host,
    n: u16,
    store: &str,
) -> anyhow::Result<Vec<CoordinatorProcess>> {
    let mut coordinators = Vec::new();
    for i in 0..n {
        coordinators.push(CoordinatorProcess::start_in(host, PORT + i, store, &QUICK_FLEET).await?);
    }
    Ok(coordinators)
}

/// What a job inside a host dials: its own cluster's coordinators, on
/// loopback there.
fn local_endpoints(n: u16) -> Vec<String> {
    (0..n)
        .map(|i| format!("http://127.0.0.1:{}", PORT + i))
        .collect()
}

fn job(endpoints: Vec<String>, pipeline: &str, seed: u64) -> JobProcessSpec {
    JobProcessSpec {
        endpoints,
        pipeline: pipeline.into(),
        records: 60_000,
        seed,
        parallelism: 4,
        processes: 2,
        batch: 2,
        keepalive: Duration::from_secs(1),
    }
}

async fn control(process: &CoordinatorProcess) -> anyhow::Result<ControlClient> {
    Ok(ControlClient::connect(process.endpoint()).await?)
}

async fn wait(
    control: &mut ControlClient,
    pipeline: &PipelineName,
    predicate: impl Fn(&PipelineStatus) -> bool,
) -> anyhow::Result<PipelineStatus> {
    Ok(control.wait_for(pipeline, LIMIT, predicate).await?)
}

fn phase(phase: Phase) -> impl Fn(&PipelineStatus) -> bool {
    move |s| s.phase == Some(phase)
}

/// Starts `first` and waits until the pipeline exists with its gates,
/// then starts `second` and waits for its gates.
async fn start_jobs(
    control: &mut ControlClient,
    pipeline: &PipelineName,
    first: (&Host, &JobProcessSpec, Colour),
    second: (&Host, &JobProcessSpec, Colour),
) -> anyhow::Result<(JobProcess, JobProcess)> {
    let a = JobProcess::start_in(first.0, first.1, first.2)?;
    // The first gate creates the pipeline; watching needs it to exist, and
    // its creation is no event the control API offers: probe, bounded.
    let deadline = Instant::now() + LIMIT;
    while control.get(pipeline).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "{pipeline} never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = first.1.parallelism;
    wait(control, pipeline, |s| {
        s.gates(first.2).connected == expected
    })
    .await?;
    let b = JobProcess::start_in(second.0, second.1, second.2)?;
    let expected = second.1.parallelism;
    wait(control, pipeline, |s| {
        s.gates(second.2).connected == expected
    })
    .await?;
    Ok((a, b))
}

/// Both jobs to their end: (duplicates, gaps), and what each emitted.
async fn tally(a: JobProcess, b: JobProcess, records: u32) -> anyhow::Result<(usize, usize)> {
    let (a, b) = (a.finish().await?, b.finish().await?);
    let counts = tally_ids(records as usize, &[&a.emitted, &b.emitted]);
    println!(
        "emitted {} + {}, most held by a subtask {} / {}, duplicates {}, gaps {}",
        a.emitted.len(),
        b.emitted.len(),
        a.max_held,
        b.max_held,
        counts.0,
        counts.1
    );
    Ok(counts)
}

/// Schedules `target` at EARLIEST (promoted at once) through `control`,
/// waits for DRAINED, completes: the time from schedule to DRAINED.
async fn cut_over(
    control: &mut ControlClient,
    pipeline: &PipelineName,
    target: Colour,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    control
        .schedule(pipeline, ScheduleRequest::earliest(target))
        .await?;
    wait(control, pipeline, phase(Phase::Drained)).await?;
    let drained = started.elapsed();
    let completed = control.complete(pipeline).await?;
    assert_eq!(completed.phase, Some(Phase::Completed));
    Ok(drained)
}

/// BLUE's gates in cluster A on A's coordinator, GREEN's in cluster B on
/// B's, one etcd on its own host: GREEN takes over from BLUE across the
/// clusters, then BLUE takes back over, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_moves_to_another_cluster_and_back() -> anyhow::Result<()> {
    let mut network = Network::new()?;
    let (_store, _etcd, store) = store_host(&mut network).await?;
    let (cluster_a, cluster_b) = (network.host("cluster-a")?, network.host("cluster-b")?);
    let a = coordinators_in(&cluster_a, 1, &store).await?;
    let b = coordinators_in(&cluster_b, 1, &store).await?;
    let name = "moving";
    let pipeline = PipelineName::new(name)?;
    let spec = job(local_endpoints(1), name, 31);
    let (mut control_a, mut control_b) = (control(&a[0]).await?, control(&b[0]).await?);
    let (blue, green) = start_jobs(
        &mut control_a,
        &pipeline,
        (&cluster_a, &spec, Colour::Blue),
        (&cluster_b, &spec, Colour::Green),
    )
    .await?;
    // B sees A's gates through the store: one picture on both sides.
    let seen = wait(&mut control_b, &pipeline, |s| {
        s.blue.connected == 4 && s.green.connected == 4
    })
    .await?;
    assert_eq!(seen.serving.len(), 2, "{:?}", seen.serving);

    let to_b = cut_over(&mut control_b, &pipeline, Colour::Green).await?;
    // The job runs in cluster B for a while (a third of the stream).
    let third = u64::from(spec.records / 3);
    wait(&mut control_b, &pipeline, |s| s.green.emitted >= third).await?;
    let back_to_a = cut_over(&mut control_a, &pipeline, Colour::Blue).await?;
    println!("schedule to DRAINED: to cluster B {to_b:?}, back to cluster A {back_to_a:?}");
    assert_eq!(tally(blue, green, spec.records).await?, (0, 0));
    Ok(())
}

/// Three replicas in one cluster with both jobs' gate clients spread over
/// them, GREEN's job first (it owns the pipeline), every replica serving.
struct OneCluster {
    green: JobProcess,
    blue: JobProcess,
    control: ControlClient,
    pipeline: PipelineName,
    records: u32,
    replicas: Vec<CoordinatorProcess>,
    _etcd: EtcdServer,
    _network: Network,
}

impl OneCluster {
    async fn start(name: &str, seed: u64, batch: usize) -> anyhow::Result<Self> {
        let mut network = Network::new()?;
        let (_store, etcd, store) = store_host(&mut network).await?;
        let cluster = network.host("cluster")?;
        let replicas = coordinators_in(&cluster, 3, &store).await?;
        let pipeline = PipelineName::new(name)?;
        let spec = JobProcessSpec {
            processes: 3,
            parallelism: 6,
            batch,
            ..job(local_endpoints(3), name, seed)
        };
        let mut control = control(&replicas[0]).await?;
        let (green, blue) = start_jobs(
            &mut control,
            &pipeline,
            (&cluster, &spec, Colour::Green),
            (&cluster, &spec, Colour::Blue),
        )
        .await?;
        let status = wait(&mut control, &pipeline, |s| s.serving.len() == 3).await?;
        assert!(
            status.serving.iter().all(|c| c.blue + c.green > 0),
            "every replica serves gates: {:?}",
            status.serving
        );
        Ok(OneCluster {
            green,
            blue,
            control,
            pipeline,
            records: spec.records,
            replicas,
            _etcd: etcd,
            _network: network,
        })
    }

    /// The old colour's (GREEN's) lowest watermark in the view of the live
    /// replica that sees it furthest. DRAINED was decided by one of them
    /// from its own view; another may still hold, for a moment, a stopped
    /// replica's last report of a gate that has moved on (it stops counting
    /// after the time-to-live, and the gate's new replica reports it within
    /// a report interval).
    async fn furthest_view_of_green(&self, live: &[usize]) -> anyhow::Result<Key> {
        let mut furthest = Key::MIN;
        for &replica in live {
            let status = control(&self.replicas[replica])
                .await?
                .get(&self.pipeline)
                .await?;
            furthest = furthest.max(status.green.lowest_watermark);
        }
        Ok(furthest)
    }

    /// Completes the transition and counts what both jobs emitted.
    async fn complete_and_tally(mut self) -> anyhow::Result<(usize, usize)> {
        self.control.complete(&self.pipeline).await?;
        let (green, blue) = (self.green, self.blue);
        let counts = tally(green, blue, self.records).await?;
        drop(self.replicas);
        Ok(counts)
    }
}

/// Three replicas in one cluster, each job's gate clients spread over all
/// three: DRAINED comes from their reports together and the transition
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_in_one_cluster_share_the_jobs() -> anyhow::Result<()> {
    let mut fleet = OneCluster::start("spread", 32, 2).await?;
    let started = Instant::now();
    fleet
        .control
        .schedule(&fleet.pipeline, ScheduleRequest::earliest(Colour::Blue))
        .await?;
    wait(&mut fleet.control, &fleet.pipeline, phase(Phase::Drained)).await?;
    println!(
        "schedule to DRAINED on three replicas: {:?}",
        started.elapsed()
    );
    assert_eq!(fleet.complete_and_tally().await?, (0, 0));
    Ok(())
}

/// The cutover key far enough ahead that the old job is still before it
/// when the scenario strikes: `lead` of event time past the horizon.
async fn schedule_ahead(
    control: &mut ControlClient,
    pipeline: &PipelineName,
    target: Colour,
    lead: i64,
) -> anyhow::Result<Key> {
    loop {
        let now = control.get(pipeline).await?;
        let at = Key(now.plan.horizon.0 + lead);
        let request = ScheduleRequest {
            auto_promote: false,
            ..ScheduleRequest::at(target, at)
        };
        match control.schedule(pipeline, request).await {
            Ok(_) => return Ok(at),
            // The horizon moved past the key meanwhile: again.
            Err(e) if e.to_string().contains("below the horizon") => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `kill -9` of one of three replicas while the cutover runs: its gates
/// move to the others and the transition completes; prints the time from
/// the death to DRAINED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_the_cutover() -> anyhow::Result<()> {
    let mut fleet = OneCluster::start("killed", 33, 1).await?;
    // Promoted at once: CUTTING_OVER from the start, the old job some
    // seconds of event time before the key.
    let at = schedule_ahead(&mut fleet.control, &fleet.pipeline, Colour::Blue, 20_000).await?;
    let cutting = fleet.control.promote(&fleet.pipeline).await?;
    assert_eq!(cutting.phase, Some(Phase::CuttingOver));
    fleet.replicas[2].kill9()?;
    let killed = Instant::now();
    wait(&mut fleet.control, &fleet.pipeline, phase(Phase::Drained)).await?;
    let resumed = killed.elapsed();
    let seen = fleet.furthest_view_of_green(&[0, 1]).await?;
    assert!(
        seen >= at,
        "DRAINED with the old job past the key: {seen:?} < {at:?}"
    );
    println!("replica killed at cutover {at:?}: DRAINED {resumed:?} later");
    assert_eq!(fleet.complete_and_tally().await?, (0, 0));
    Ok(())
}

/// Cluster A's link to the store (and to everything else) is cut while a
/// cutover from its job to cluster B's is in flight: A's coordinator can
/// write nothing and its gates decide below their horizon, then hold;
/// cluster B goes on; DRAINED never comes while A's gates are unseen;
/// once the link is back the transition completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_cut_off_from_the_store() -> anyhow::Result<()> {
    let mut network = Network::new()?;
    let (_store, _etcd, store) = store_host(&mut network).await?;
    let (cluster_a, cluster_b) = (network.host("cluster-a")?, network.host("cluster-b")?);
    let _a = coordinators_in(&cluster_a, 1, &store).await?;
    let b = coordinators_in(&cluster_b, 1, &store).await?;
    let name = "cut-off";
    let pipeline = PipelineName::new(name)?;
    let spec = JobProcessSpec {
        batch: 1,
        ..job(local_endpoints(1), name, 34)
    };
    let mut control_b = control(&b[0]).await?;
    let (blue, green) = start_jobs(
        &mut control_b,
        &pipeline,
        (&cluster_a, &spec, Colour::Blue),
        (&cluster_b, &spec, Colour::Green),
    )
    .await?;
    let at = schedule_ahead(&mut control_b, &pipeline, Colour::Green, 5_000).await?;
    control_b.promote(&pipeline).await?;
    network.cut(&cluster_a)?;
    // The cut lasts past the report's time-to-live: B stops counting A's
    // gates, and its own job goes on past the key.
    let cut_for = Duration::from_secs(4);
    let during = tokio::time::timeout(
        cut_for,
        control_b.wait_for(&pipeline, cut_for, |s| s.phase == Some(Phase::Drained)),
    )
    .await;
    let status = control_b.get(&pipeline).await?;
    assert!(
        !matches!(during, Ok(Ok(_))) && status.phase == Some(Phase::CuttingOver),
        "no DRAINED while the old job's cluster is cut off: {status:?}"
    );
    assert!(
        status.green.lowest_watermark >= at,
        "cluster B went on past the cutover: {:?}",
        status.green
    );
    network.restore(&cluster_a)?;
    let restored = Instant::now();
    wait(&mut control_b, &pipeline, phase(Phase::Drained)).await?;
    println!(
        "cluster A cut off for {cut_for:?}: DRAINED {:?} after the link came back",
        restored.elapsed()
    );
    control_b.complete(&pipeline).await?;
    let (blue_out, green_out) = (blue.finish().await?, green.finish().await?);
    assert!(
        blue_out.max_held > 0,
        "A's gates held once past their horizon"
    );
    let counts = tally_ids(
        spec.records as usize,
        &[&blue_out.emitted, &green_out.emitted],
    );
    assert_eq!(counts, (0, 0));
    Ok(())
}

/// One of three replicas paused with SIGSTOP right after a cutover was
/// promoted: its gates reconnect to the others, its report goes stale and
/// then expires; DRAINED comes only with the old job truly past the mark,
/// and after SIGCONT the replica serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_never_makes_drained_early() -> anyhow::Result<()> {
    let mut fleet = OneCluster::start("paused", 35, 1).await?;
    let at = schedule_ahead(&mut fleet.control, &fleet.pipeline, Colour::Blue, 10_000).await?;
    fleet.control.promote(&fleet.pipeline).await?;
    fleet.replicas[1].signal("STOP")?;
    let paused = Instant::now();
    let drained = wait(&mut fleet.control, &fleet.pipeline, phase(Phase::Drained)).await?;
    let lateness = drained
        .transition
        .as_ref()
        .map_or(0, |t| t.allowed_lateness as i64);
    let seen = fleet.furthest_view_of_green(&[0, 2]).await?;
    assert!(
        seen.0 >= at.0 + lateness,
        "DRAINED with every old gate past the mark: {seen:?} < {at:?} + {lateness}"
    );
    println!("replica paused: DRAINED {:?} later", paused.elapsed());
    fleet.replicas[1].signal("CONT")?;
    assert_eq!(fleet.complete_and_tally().await?, (0, 0));
    Ok(())
}
