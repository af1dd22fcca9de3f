//! `cutover demo`: an embedded coordinator (or several on one store, one
//! of them stopped during the transition), two simulated jobs (GREEN and
//! BLUE, different parallelism, different partitioning, independent
//! watermark timing) replaying one out-of-order stream, a cutover at
//! EARLIEST while both run, and a check that every record was emitted by
//! exactly one colour.

pub mod job;
pub mod job_process;
pub mod stream;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use cutover_client::{Colour, ControlClient, PipelineName};
use cutover_coordinator::config::FleetConfig;
use cutover_coordinator::metrics::WriteLabel;
use cutover_coordinator::store::Store;
use cutover_coordinator::tls::{ServerTls, TlsFiles};
use cutover_coordinator::{Coordinator, CoordinatorConfig, Metrics, serve, serve_tls};
use cutover_core::{CutoverAt, Epoch, Mode, Phase, ScheduleRequest};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::store_spec::{StoreOptions, StoreSpec};
use job::{JobSpec, run_job};
use stream::StreamSpec;

/// Flags of `cutover demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Records in the stream.
    #[arg(long, default_value_t = 100_000)]
    pub records: u32,
    /// Parallelism of the GREEN (old) job.
    #[arg(long, default_value_t = 4)]
    pub green_parallelism: u32,
    /// Parallelism of the BLUE (new) job.
    #[arg(long, default_value_t = 6)]
    pub blue_parallelism: u32,
    /// Store of the embedded coordinator: `file:PATH`, `etcd:URL[,URL...]`
    /// or `memory`; a file store in a temporary folder when absent.
    #[arg(long)]
    pub store: Option<StoreSpec>,
    /// Options of the store.
    #[command(flatten)]
    pub store_options: StoreOptions,
    /// Horizon window of the embedded coordinator (event time).
    #[arg(long, default_value = "5s", value_parser = crate::flags::horizon_window, allow_hyphen_values = true)]
    pub horizon_window: Duration,
    /// Decide on the gate's watermark (WATERMARK mode) instead of the
    /// record's timestamp (EVENT_TIME, the default).
    #[arg(long)]
    pub watermark_mode: bool,
    /// Seed of the stream and of the watermark timing.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Embedded coordinators sharing the store (1 to 16). With more than
    /// one, each client process starts on its own coordinator (listing the
    /// others to move to), and the last coordinator is stopped while the
    /// transition runs: its gates move to the others.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub coordinators: u32,
    /// Serve the embedded coordinators over mutual TLS with a throw-away CA
    /// (as `cutover dev-pki` writes it); every job's client and the control
    /// client present its client certificate.
    #[arg(long)]
    pub mutual_tls: bool,
}

/// The demo's figures.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Records in the stream.
    pub records: u32,
    /// Records emitted by BLUE.
    pub emitted_blue: usize,
    /// Records emitted by GREEN.
    pub emitted_green: usize,
    /// Extra emissions of records emitted more than once.
    pub duplicates: usize,
    /// Records emitted by neither colour.
    pub gaps: usize,
    /// Decision mode.
    pub mode: &'static str,
    /// Cutover key (event time, ms).
    pub cutover_key: i64,
    /// Epoch of the schedule.
    pub schedule_epoch: u64,
    /// Epoch at the end.
    pub final_epoch: u64,
    /// Schedule call to every gate client holding its epoch (acks follow at once).
    pub schedule_to_all_acked_ms: f64,
    /// Schedule call to DRAINED.
    pub schedule_to_drained_ms: f64,
    /// Store writes of the pipeline over the whole run.
    pub store_writes: u64,
    /// GREEN parallelism.
    pub green_parallelism: u32,
    /// BLUE parallelism.
    pub blue_parallelism: u32,
    /// Most records one subtask held at once.
    pub max_held: usize,
    /// Where the plan was stored.
    pub store: String,
    /// Embedded coordinators.
    pub coordinators: u32,
    /// Coordinators stopped during the transition.
    pub coordinators_stopped: u32,
    /// Writes of the coordinators' serving reports over the whole run.
    pub report_writes: u64,
    /// Wall time of the run.
    pub wall_ms: f64,
    /// `plaintext` or `mutual TLS`.
    pub transport: &'static str,
}

impl DemoArgs {
    /// Runs the demo and prints the summary; exit code 1 on any duplicate
    /// or gap in EVENT_TIME mode.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let summary = self.execute().await?;
        print_summary(&summary, self.json);
        let failed = summary.duplicates > 0 || summary.gaps > 0;
        Ok(if failed && !self.watermark_mode {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }

    /// Runs the demo and returns its figures.
    pub async fn execute(&self) -> anyhow::Result<Summary> {
        let started = Instant::now();
        let tempdir = tempfile::tempdir().context("creating a temporary folder")?;
        let spec = self
            .store
            .clone()
            .unwrap_or_else(|| StoreSpec::File(tempdir.path().join("state")));
        let store = spec.open(&self.store_options).await?;
        let description = store.describe();
        let pki = if self.mutual_tls {
            Some(crate::pki::TestPki::generate()?)
        } else {
            None
        };
        let tls = pki
            .as_ref()
            .map_or_else(cutover_client::ClientTls::default, |pki| {
                cutover_client::ClientTls {
                    ca: Some(pki.ca()),
                    identity: Some((pki.client().cert, pki.client().key)),
                    domain: None,
                    token_file: None,
                }
            });
        let mut coordinators = Vec::new();
        for _ in 0..self.coordinators {
            coordinators
                .push(Embedded::start(store.clone(), self.horizon_window, pki.as_ref()).await?);
        }
        let endpoints: Vec<String> = coordinators.iter().map(|c| c.endpoint.clone()).collect();
        let lists = job::rotated_lists(&endpoints);
        let endpoint = endpoints[0].clone();

        // A pipeline of its own per run: a persistent store keeps earlier runs'.
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let pipeline = PipelineName::new(format!("demo-{}-{run}", self.seed))?;
        let stream_spec = StreamSpec {
            records: self.records,
            start_ms: 1_700_000_000_000,
            step_ms: 10,
            jitter_ms: 1_000,
            seed: self.seed,
        };
        let stream = Arc::new(stream_spec.generate());
        let (epoch_tx, epoch_rx) = watch::channel::<Option<Epoch>>(None);
        let job = |colour, parallelism, processes, salt, batch| JobSpec {
            keepalive: Duration::from_secs(10),
            tls: tls.clone(),
            colour,
            parallelism,
            processes,
            salt,
            batch,
            seed: self.seed ^ salt,
            out_of_orderness_ms: stream_spec.out_of_orderness_ms(),
        };

        // GREEN runs first.
        let green_done = Arc::new(AtomicUsize::new(0));
        let green = tokio::spawn(run_job(
            lists.clone(),
            pipeline.clone(),
            job(Colour::Green, self.green_parallelism, 2, 0x6EE7, 8),
            stream.clone(),
            green_done.clone(),
            epoch_rx.clone(),
        ));
        let total = self.records as usize;
        wait_until(|| green_done.load(Ordering::Relaxed) >= total / 4).await;

        // BLUE starts from the beginning of the stream (an earlier position)
        // and catches up faster.
        let blue_done = Arc::new(AtomicUsize::new(0));
        let blue = tokio::spawn(run_job(
            lists.clone(),
            pipeline.clone(),
            job(Colour::Blue, self.blue_parallelism, 3, 0xB1E, 24),
            stream.clone(),
            blue_done.clone(),
            epoch_rx,
        ));
        wait_until(|| blue_done.load(Ordering::Relaxed) >= total / 10).await;

        let mut control = ControlClient::connect_with(endpoint.clone(), &tls).await?;
        let mode = if self.watermark_mode {
            Mode::Watermark
        } else {
            Mode::EventTime
        };
        let scheduled_at = Instant::now();
        let status = control
            .schedule(
                &pipeline,
                ScheduleRequest {
                    target: Colour::Blue,
                    at: CutoverAt::Earliest,
                    mode,
                    allowed_lateness: 0,
                    auto_promote: true,
                },
            )
            .await
            .context("scheduling the cutover")?;
        let transition = status.transition.context("no transition in the status")?;
        let schedule_epoch = status.plan.epoch;
        epoch_tx.send_replace(Some(schedule_epoch));
        // With several coordinators, one goes away while the cutover runs.
        let mut stopped = 0;
        if coordinators.len() > 1
            && let Some(last) = coordinators.pop()
        {
            last.stop().await?;
            stopped = 1;
        }

        control
            .wait_for(&pipeline, PHASE_LIMIT, |s| s.phase == Some(Phase::Drained))
            .await?;
        let drained_ms = scheduled_at.elapsed().as_secs_f64() * 1e3;
        control
            .complete(&pipeline)
            .await
            .context("completing the transition")?;

        let green = green.await.context("GREEN job panicked")??;
        let blue = blue.await.context("BLUE job panicked")??;
        let final_status = control.get(&pipeline).await?;
        let label = WriteLabel {
            pipeline: pipeline.to_string(),
            outcome: "written",
        };
        let mut store_writes = 0;
        let mut report_writes = 0;
        for embedded in &coordinators {
            store_writes += embedded.metrics.store_writes.get_or_create(&label).get();
            report_writes += embedded.metrics.report_writes.get();
        }
        for embedded in coordinators {
            embedded.stop().await?;
        }

        let mut counts = vec![0u8; total];
        for &id in green.emitted.iter().chain(&blue.emitted) {
            let slot = &mut counts[id as usize];
            *slot = slot.saturating_add(1);
        }
        let duplicates = counts
            .iter()
            .map(|&c| usize::from(c.saturating_sub(1)))
            .sum();
        let gaps = counts.iter().filter(|&&c| c == 0).count();
        let acked = green
            .installed_at
            .iter()
            .chain(&blue.installed_at)
            .max()
            .map_or(f64::NAN, |t| {
                t.duration_since(scheduled_at).as_secs_f64() * 1e3
            });
        Ok(Summary {
            records: self.records,
            emitted_blue: blue.emitted.len(),
            emitted_green: green.emitted.len(),
            duplicates,
            gaps,
            mode: if self.watermark_mode {
                "WATERMARK"
            } else {
                "EVENT_TIME"
            },
            cutover_key: transition.at.0,
            schedule_epoch: schedule_epoch.0,
            final_epoch: final_status.plan.epoch.0,
            schedule_to_all_acked_ms: acked,
            schedule_to_drained_ms: drained_ms,
            store_writes,
            green_parallelism: self.green_parallelism,
            blue_parallelism: self.blue_parallelism,
            max_held: green.max_held.max(blue.max_held),
            store: description,
            coordinators: self.coordinators,
            coordinators_stopped: stopped,
            report_writes,
            wall_ms: started.elapsed().as_secs_f64() * 1e3,
            transport: if self.mutual_tls {
                "mutual TLS"
            } else {
                "plaintext"
            },
        })
    }
}

/// A coordinator serving on a loopback port inside the demo.
struct Embedded {
    endpoint: String,
    metrics: Metrics,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), cutover_coordinator::ServeError>>,
}

impl Embedded {
    /// Starts on a free loopback port; over mutual TLS with `pki`'s server
    /// certificate and client CA when given.
    async fn start(
        store: Arc<dyn Store>,
        window: Duration,
        pki: Option<&crate::pki::TestPki>,
    ) -> anyhow::Result<Embedded> {
        let metrics = Metrics::default();
        let config = CoordinatorConfig {
            horizon: crate::flags::horizon_policy(window),
            // Coordinators in one process: renew often, judge quickly.
            fleet: FleetConfig {
                renew_interval: Duration::from_millis(200),
                ttl: Duration::from_secs(2),
                ..FleetConfig::default()
            },
            ..CoordinatorConfig::default()
        };
        let coordinator = Coordinator::new(store, config, metrics.clone());
        coordinator.load_all().await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async {
            let _ = stopped.await;
        };
        let (endpoint, server) = match pki {
            None => (
                format!("http://{address}"),
                tokio::spawn(serve(coordinator, listener, stopped)),
            ),
            Some(pki) => {
                let tls = ServerTls::load(TlsFiles {
                    cert: pki.server().cert,
                    key: pki.server().key,
                    client_ca: Some(pki.ca()),
                })?;
                (
                    format!("https://{address}"),
                    tokio::spawn(serve_tls(coordinator, listener, Arc::new(tls), stopped)),
                )
            }
        };
        Ok(Embedded {
            endpoint,
            metrics,
            stop,
            server,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await.context("server task")??;
        Ok(())
    }
}

/// How long the demo waits for its transition to drain.
const PHASE_LIMIT: Duration = Duration::from_secs(600);

async fn wait_until(condition: impl Fn() -> bool) {
    // Polls job progress counters that have no event to await.
    while !condition() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn print_summary(s: &Summary, json: bool) {
    let ok = |n: usize| if n == 0 { "ok" } else { "FAIL" };
    println!(
        "cutover demo: {} records, {} mode, store {}, {}",
        s.records, s.mode, s.store, s.transport
    );
    if s.coordinators > 1 {
        println!(
            "  {:<34} {:>12}",
            format!("coordinators ({} stopped mid-run)", s.coordinators_stopped),
            s.coordinators
        );
    }
    println!(
        "  {:<34} {:>12}",
        format!("emitted by GREEN (parallelism {})", s.green_parallelism),
        s.emitted_green
    );
    println!(
        "  {:<34} {:>12}",
        format!("emitted by BLUE (parallelism {})", s.blue_parallelism),
        s.emitted_blue
    );
    println!(
        "  {:<34} {:>12}  {}",
        "duplicates",
        s.duplicates,
        ok(s.duplicates)
    );
    println!("  {:<34} {:>12}  {}", "gaps", s.gaps, ok(s.gaps));
    println!(
        "  {:<34} {:>12}",
        "cutover key (event time, ms)", s.cutover_key
    );
    println!("  {:<34} {:>12}", "epoch of the schedule", s.schedule_epoch);
    println!("  {:<34} {:>12}", "epoch at the end", s.final_epoch);
    println!(
        "  {:<34} {:>9.1} ms",
        "schedule -> all gates acked", s.schedule_to_all_acked_ms
    );
    println!(
        "  {:<34} {:>9.1} ms",
        "schedule -> DRAINED", s.schedule_to_drained_ms
    );
    println!(
        "  {:<34} {:>12}",
        "store writes (whole run)", s.store_writes
    );
    println!(
        "  {:<34} {:>12}",
        "serving report writes (whole run)", s.report_writes
    );
    println!(
        "  {:<34} {:>12}",
        "most records held by one subtask", s.max_held
    );
    println!("  {:<34} {:>9.1} ms", "wall time", s.wall_ms);
    if json {
        match serde_json::to_string(s) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("cannot encode the summary: {e}"),
        }
    }
}
