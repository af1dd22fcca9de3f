//! `cutover bench writes`: store writes of one scripted run, per backend and
//! per number of gates — they must grow with event time, not with gates.
//!
//! The run: G GREEN and G BLUE gates on C embedded coordinators over the
//! store (each colour's gates spread over one session per coordinator);
//! every gate moves its watermark one horizon window at a time for
//! `--windows` windows; halfway, a cutover at EARLIEST to BLUE; then
//! DRAINED and completion. Counted: the coordinators' successful document
//! writes for the pipeline (creation, one horizon step per window,
//! schedule, DRAINED, completion — DRAINED often rides on a step), the
//! compare-and-swaps they lost to each other, and their serving-report
//! writes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cutover_client::{
    Client, ClientConfig, Colour, ControlClient, Gate, GateIdentity, Key, PipelineName,
};
use cutover_coordinator::admission::CallerLimits;
use cutover_coordinator::config::FleetConfig;
use cutover_coordinator::metrics::WriteLabel;
use cutover_coordinator::store::Store;
use cutover_coordinator::{Coordinator, CoordinatorConfig, Metrics, serve};
use cutover_core::{Epoch, HorizonPolicy, Phase, ScheduleRequest};
use serde::Serialize;
use tokio::net::TcpListener;

use super::fanout_client::unix_nanos;
use crate::store_spec::{StoreOptions, StoreSpec};

/// Event time of one horizon window in the scripted run (ms).
const WINDOW: i64 = 1_000;
const LIMIT: Duration = Duration::from_secs(30);

/// Flags of `cutover bench writes`.
#[derive(clap::Args, Debug)]
pub struct WritesArgs {
    /// Stores to measure (repeatable): `memory`, `file:PATH`, `etcd:URL`,
    /// `configmap[:NS]`. Default: memory and a file store in a temporary
    /// folder.
    #[arg(long)]
    pub store: Vec<StoreSpec>,
    /// etcd prefix, credentials and TLS files.
    #[command(flatten)]
    pub store_options: StoreOptions,
    /// Gates per colour, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2u32, 32, 512])]
    pub gates: Vec<u32>,
    /// Horizon windows of event time in the run.
    #[arg(long, default_value_t = 40)]
    pub windows: u32,
    /// Coordinators serving the pipeline together, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32])]
    pub coordinators: Vec<u32>,
    /// Print the result as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Writes of one run.
#[derive(Debug, Serialize)]
pub struct WritesRow {
    /// The store.
    pub store: String,
    /// Coordinators.
    pub coordinators: u32,
    /// Gates per colour.
    pub gates_per_colour: u32,
    /// Successful document writes of the pipeline.
    pub writes: u64,
    /// Compare-and-swaps lost to another coordinator.
    pub conflicts: u64,
    /// Serving-report writes.
    pub report_writes: u64,
}

/// What the coordinators wrote in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// Successful document writes.
    pub written: u64,
    /// Lost compare-and-swaps.
    pub conflicts: u64,
    /// Serving-report writes.
    pub reports: u64,
}

impl WritesArgs {
    /// Runs the script per store and gate count and prints the table.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if self.gates.is_empty() || self.gates.contains(&0) || self.windows < 2 {
            bail!("--gates needs positive counts and --windows at least 2");
        }
        if self.coordinators.is_empty() || self.coordinators.iter().any(|&c| !(1..=16).contains(&c))
        {
            bail!("--coordinators needs counts from 1 to 16");
        }
        let tempdir = tempfile::tempdir().context("creating a temporary folder")?;
        let stores = if self.store.is_empty() {
            vec![
                StoreSpec::Memory,
                StoreSpec::File(tempdir.path().join("state")),
            ]
        } else {
            self.store.clone()
        };
        let mut rows = Vec::new();
        for spec in &stores {
            let store = spec.open(&self.store_options).await?;
            for &coordinators in &self.coordinators {
                for &gates in &self.gates {
                    let writes =
                        writes_of_a_fleet_run(store.clone(), coordinators, gates, self.windows)
                            .await?;
                    rows.push(WritesRow {
                        store: store.describe(),
                        coordinators,
                        gates_per_colour: gates,
                        writes: writes.written,
                        conflicts: writes.conflicts,
                        report_writes: writes.reports,
                    });
                }
            }
        }
        println!(
            "cutover bench writes: {} horizon windows and one transition (schedule, DRAINED, completion)",
            self.windows
        );
        for row in &rows {
            println!(
                "  {:<40} {:>2} coordinators {:>6} gates per colour: {:>4} writes, {:>3} lost CAS, {:>4} report writes",
                row.store,
                row.coordinators,
                row.gates_per_colour,
                row.writes,
                row.conflicts,
                row.report_writes
            );
        }
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "windows": self.windows, "runs": rows })
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Successful store writes of the scripted run with `gates` gates per
/// colour over `windows` horizon windows (a fresh pipeline on `store`).
pub async fn writes_of_a_run(
    store: Arc<dyn Store>,
    gates: u32,
    windows: u32,
) -> anyhow::Result<u64> {
    Ok(writes_of_a_fleet_run(store, 1, gates, windows)
        .await?
        .written)
}

/// What `coordinators` coordinators wrote in the scripted run with `gates`
/// gates per colour over `windows` horizon windows (a fresh pipeline on
/// `store`).
pub async fn writes_of_a_fleet_run(
    store: Arc<dyn Store>,
    coordinators: u32,
    gates: u32,
    windows: u32,
) -> anyhow::Result<Writes> {
    let mut fleet = Vec::new();
    let mut endpoints = Vec::new();
    for _ in 0..coordinators {
        let coordinator = Coordinator::new(
            store.clone(),
            CoordinatorConfig {
                horizon: HorizonPolicy::with_window(WINDOW as u64),
                fleet: FleetConfig {
                    renew_interval: Duration::from_millis(100),
                    ttl: Duration::from_secs(1),
                    ..FleetConfig::default()
                },
                caller_limits: CallerLimits::none(),
                ..CoordinatorConfig::default()
            },
            Metrics::default(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        endpoints.push(format!("http://{}", listener.local_addr()?));
        let server = {
            let coordinator = coordinator.clone();
            tokio::spawn(async move { serve(coordinator, listener, std::future::pending()).await })
        };
        fleet.push((coordinator, server));
    }
    let result = script(&fleet, &endpoints, gates, windows).await;
    for (coordinator, server) in fleet {
        coordinator.shutdown();
        server.abort();
    }
    result
}

async fn script(
    fleet: &[(
        Coordinator,
        tokio::task::JoinHandle<Result<(), cutover_coordinator::ServeError>>,
    )],
    endpoints: &[String],
    gates_per_colour: u32,
    windows: u32,
) -> anyhow::Result<Writes> {
    let name = format!("writes-{gates_per_colour}-{}", unix_nanos() % 1_000_000_000);
    let pipeline = PipelineName::new(name.clone())?;
    // Per colour, one client per coordinator; the colour's gates spread
    // over them.
    let mut clients: Vec<(Colour, Client)> = Vec::new();
    for colour in [Colour::Green, Colour::Blue] {
        for endpoint in endpoints {
            clients.push((
                colour,
                Client::connect(
                    ClientConfig::new(endpoint.clone())
                        .progress_interval(Duration::from_millis(10)),
                )?,
            ));
        }
    }
    let mut gates = Vec::new();
    // GREEN first: its gates create the pipeline, owned by GREEN.
    for colour in [Colour::Green, Colour::Blue] {
        let of_colour: Vec<&Client> = clients
            .iter()
            .filter(|(c, _)| *c == colour)
            .map(|(_, client)| client)
            .collect();
        for subtask_index in 0..gates_per_colour {
            let client = of_colour[subtask_index as usize % of_colour.len()];
            gates.push(client.gate(GateIdentity {
                pipeline: pipeline.clone(),
                colour,
                job_id: format!("{colour}-job"),
                gate_uid: "sink-gate".into(),
                subtask_index,
                parallelism: gates_per_colour,
                attempt: 0,
            })?);
        }
        for client in of_colour.iter().take(gates_per_colour as usize) {
            tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
        }
    }
    // A client given no gate (fewer gates than coordinators) opens no
    // session and holds no plan: only the others take part.
    let per_colour = endpoints.len();
    let clients: Vec<Client> = clients
        .into_iter()
        .enumerate()
        .filter(|(i, _)| ((i % per_colour) as u32) < gates_per_colour)
        .map(|(_, (_, client))| client)
        .collect();
    let mut control = ControlClient::connect(endpoints[0].clone()).await?;
    let windows = i64::from(windows);
    for step in 1..=windows / 2 {
        advance(&clients, &mut gates, &pipeline, step * WINDOW).await?;
    }
    control
        .schedule(&pipeline, ScheduleRequest::earliest(Colour::Blue))
        .await?;
    for step in windows / 2 + 1..=windows {
        advance(&clients, &mut gates, &pipeline, step * WINDOW).await?;
    }
    control
        .wait_for(&pipeline, LIMIT, |s| s.phase == Some(Phase::Drained))
        .await
        .context("DRAINED did not come")?;
    control.complete(&pipeline).await?;
    let mut writes = Writes::default();
    for (coordinator, _) in fleet {
        let metrics = coordinator.metrics();
        let count = |outcome| {
            metrics
                .store_writes
                .get_or_create(&WriteLabel {
                    pipeline: name.clone(),
                    outcome,
                })
                .get()
        };
        writes.written += count("written");
        writes.conflicts += count("conflict");
        writes.reports += metrics.report_writes.get();
    }
    Ok(writes)
}

/// Moves every gate to `watermark` and waits until the horizon passes it.
async fn advance(
    clients: &[Client],
    gates: &mut [Gate],
    pipeline: &PipelineName,
    watermark: i64,
) -> anyhow::Result<()> {
    for gate in gates.iter_mut() {
        gate.observe_watermark(Key(watermark));
    }
    for client in clients {
        loop {
            let plan = client.plan(pipeline).context("a plan")?;
            if plan.horizon > Key(watermark) {
                break;
            }
            tokio::time::timeout(LIMIT, client.wait_for_epoch(pipeline, plan.epoch.next()))
                .await
                .context("the horizon did not pass the watermarks")?;
        }
    }
    Ok(())
}
