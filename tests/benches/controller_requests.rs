//! Kubernetes API requests the controller makes per minute while a pipeline
//! runs steadily — nothing to decide — with 1,000 more gates of the active
//! colour reporting progress every second: the controller should react to
//! what it decides on, not to telemetry.
//!
//! `cargo bench -p cutover-tests --bench controller_requests` prints one JSON
//! line: `{"gates":1000,"seconds":S,"requests":N,"requests_per_minute":R,
//! "reconciliations":M}` (env `CUTOVER_BENCH_SECONDS`, default 60).

use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour, Key};
use cutover_controller::edge::{ControllerMetrics, OutcomeLabel};
use cutover_core::{GateIdentity, PipelineName};
use cutover_tests::controller_world::{CONTROLLER_USER, ControllerWorld, state};
use serde_json::json;

const GATES: u32 = 1_000;
const SESSIONS: u32 = 10;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let seconds: u64 = std::env::var("CUTOVER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let world = ControllerWorld::start().await?;
    world.create("orders", "v1", json!({})).await?;
    world
        .wait_for("orders", "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
        .await?;
    let pipeline = PipelineName::new("default-orders")?;
    let endpoint = world.coordinator.endpoint();
    let mut clients = Vec::new();
    let mut gates = Vec::new();
    for session in 0..SESSIONS {
        let client = Client::connect(
            ClientConfig::new(endpoint.clone()).client_name(format!("load-{session}")),
        )?;
        for index in (session..GATES).step_by(SESSIONS as usize) {
            gates.push(client.gate(GateIdentity {
                pipeline: pipeline.clone(),
                colour: Colour::Blue,
                job_id: "load".into(),
                gate_uid: "load".into(),
                subtask_index: index,
                parallelism: GATES,
                attempt: 0,
            })?);
        }
        clients.push(client);
    }
    // Every gate connected and reporting; then let the controller settle.
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let watermark =
        |at: tokio::time::Instant| Key(1_700_000_000_000 + at.elapsed().as_millis() as i64 * 20);
    for _ in 0..10 {
        tick.tick().await;
        let now = watermark(start);
        gates.iter_mut().for_each(|g| g.observe_watermark(now));
    }
    let requests_before = world.server.requests_by(CONTROLLER_USER);
    let reconciliations_before = reconciliations(&world.metrics);
    for _ in 0..seconds {
        tick.tick().await;
        let now = watermark(start);
        gates.iter_mut().for_each(|g| g.observe_watermark(now));
    }
    let requests = world.server.requests_by(CONTROLLER_USER) - requests_before;
    let reconciliations = reconciliations(&world.metrics) - reconciliations_before;
    println!(
        "{}",
        json!({
            "gates": GATES,
            "seconds": seconds,
            "requests": requests,
            "requests_per_minute": requests as f64 * 60.0 / seconds as f64,
            "reconciliations": reconciliations,
        })
    );
    Ok(())
}

/// Reconciliations so far, whatever their outcome.
fn reconciliations(metrics: &ControllerMetrics) -> u64 {
    ["ok", "action_failed", "error"]
        .into_iter()
        .map(|outcome| {
            metrics
                .reconciliations
                .get_or_create(&OutcomeLabel { outcome })
                .get()
        })
        .sum()
}
