//! `cutover bench writes`: store writes of one scripted run, per backend and
//! per number of gates — they must grow with event time, not with gates.
//!
//! The run: G GREEN and G BLUE gates (two sessions) on an embedded
//! coordinator over the store; every gate moves its watermark one horizon
//! window at a time for `--windows` windows; halfway, a cutover at EARLIEST
//! to BLUE; then DRAINED and completion. Counted: the coordinator's
//! successful store writes for the pipeline (creation, one horizon step per
//! window, schedule, DRAINED, completion — DRAINED often rides on a step).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cutover_client::{
    Client, ClientConfig, Colour, ControlClient, Gate, GateIdentity, Key, PipelineName,
};
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
    /// Print the result as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Writes of one run.
#[derive(Debug, Serialize)]
pub struct WritesRow {
    /// The store.
    pub store: String,
    /// Gates per colour.
    pub gates_per_colour: u32,
    /// Successful store writes of the pipeline.
    pub writes: u64,
}

impl WritesArgs {
    /// Runs the script per store and gate count and prints the table.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if self.gates.is_empty() || self.gates.contains(&0) || self.windows < 2 {
            bail!("--gates needs positive counts and --windows at least 2");
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
            for &gates in &self.gates {
                let writes = writes_of_a_run(store.clone(), gates, self.windows).await?;
                rows.push(WritesRow {
                    store: store.describe(),
                    gates_per_colour: gates,
                    writes,
                });
            }
        }
        println!(
            "cutover bench writes: {} horizon windows and one transition (schedule, DRAINED, completion)",
            self.windows
        );
        for row in &rows {
            println!(
                "  {:<40} {:>6} gates per colour: {:>4} writes",
                row.store, row.gates_per_colour, row.writes
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
    let coordinator = Coordinator::new(
        store,
        CoordinatorConfig {
            horizon: HorizonPolicy::with_window(WINDOW as u64),
            ..CoordinatorConfig::default()
        },
        Metrics::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let server = {
        let coordinator = coordinator.clone();
        tokio::spawn(async move { serve(coordinator, listener, std::future::pending()).await })
    };
    let result = script(&coordinator, &endpoint, gates, windows).await;
    coordinator.shutdown();
    server.abort();
    result
}

async fn script(
    coordinator: &Coordinator,
    endpoint: &str,
    gates_per_colour: u32,
    windows: u32,
) -> anyhow::Result<u64> {
    let name = format!("writes-{gates_per_colour}-{}", unix_nanos() % 1_000_000_000);
    let pipeline = PipelineName::new(name.clone())?;
    let clients: Vec<Client> = (0..2)
        .map(|_| {
            Client::connect(
                ClientConfig::new(endpoint.to_string())
                    .progress_interval(Duration::from_millis(10)),
            )
        })
        .collect::<Result<_, _>>()?;
    let mut gates = Vec::new();
    for (client, colour) in clients.iter().zip([Colour::Green, Colour::Blue]) {
        for subtask_index in 0..gates_per_colour {
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
        tokio::time::timeout(LIMIT, client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    }
    let mut control = ControlClient::connect(endpoint.to_string()).await?;
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
    let label = WriteLabel {
        pipeline: name,
        outcome: "written",
    };
    Ok(coordinator
        .metrics()
        .store_writes
        .get_or_create(&label)
        .get())
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
