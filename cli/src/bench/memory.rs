//! `cutover bench memory`: resident memory a coordinator spends per idle
//! gate and per session.
//!
//! Two runs, each on a fresh `cutover serve` process (memory store): N idle
//! gates over a few sessions, then N gates over N sessions (one stream per
//! gate). Per gate = the first run's growth over the empty process / N; per
//! session = (the second run's growth − N × per gate) / N.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use cutover_client::PipelineName;
use serde::Serialize;

use super::coordinator_process::{CoordinatorProcess, free_address};
use super::fanout_client::unix_nanos;
use super::fleet::{Fleet, layout, wait_for_all_gates};

/// Flags of `cutover bench memory`.
#[derive(clap::Args, Debug, Clone)]
pub struct MemoryArgs {
    /// Gates (and, in the second run, sessions).
    #[arg(long, default_value_t = 10_000)]
    pub gates: u32,
    /// Sessions of the first run.
    #[arg(long, default_value_t = 10)]
    pub few_sessions: u32,
    /// Client processes.
    #[arg(long, default_value_t = 8)]
    pub processes: u32,
    /// Print the result as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Resident memory of one run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Footprint {
    /// Gates.
    pub gates: u32,
    /// Sessions.
    pub sessions: u32,
    /// Before any gate arrived.
    pub empty_bytes: u64,
    /// With every gate connected and acked.
    pub loaded_bytes: u64,
}

impl Footprint {
    fn growth(&self) -> u64 {
        self.loaded_bytes.saturating_sub(self.empty_bytes)
    }
}

impl MemoryArgs {
    /// Runs both measurements and prints them.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if self.gates == 0 || self.few_sessions == 0 || self.few_sessions > self.gates {
            bail!("--gates must be positive and at least --few-sessions");
        }
        let few = footprint(self.gates, self.few_sessions, self.processes).await?;
        let many = footprint(self.gates, self.gates, self.processes).await?;
        let per_gate = few.growth() as f64 / f64::from(self.gates);
        let per_session =
            (many.growth() as f64 - per_gate * f64::from(self.gates)) / f64::from(self.gates);
        println!("cutover bench memory: coordinator resident memory (VmRSS)");
        for f in [few, many] {
            println!(
                "  {:>6} gates over {:>6} sessions: {:>8.1} MiB → {:>8.1} MiB",
                f.gates,
                f.sessions,
                f.empty_bytes as f64 / 1_048_576.0,
                f.loaded_bytes as f64 / 1_048_576.0
            );
        }
        println!("  per idle gate: {:>8.2} KiB", per_gate / 1024.0);
        println!("  per session:   {:>8.2} KiB", per_session / 1024.0);
        if self.json {
            let figures = serde_json::json!({
                "few_sessions": few,
                "one_session_per_gate": many,
                "per_gate_kib": per_gate / 1024.0,
                "per_session_kib": per_session / 1024.0,
            });
            println!("{figures}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Resident memory of a fresh coordinator before and after `gates` gates
/// over `sessions` sessions connected.
async fn footprint(gates: u32, sessions: u32, processes: u32) -> anyhow::Result<Footprint> {
    let limit = Duration::from_secs(120);
    let coordinator = CoordinatorProcess::start(free_address()?, "memory", limit).await?;
    let empty_bytes = coordinator.rss_bytes()?;
    let pipeline = PipelineName::new(format!("memory-{}", unix_nanos() % 1_000_000_000))?;
    let mut control = coordinator.control().await?;
    let mut fleet = Fleet::spawn(
        &coordinator.endpoint(),
        pipeline.as_str(),
        &layout(gates, sessions, processes.min(sessions)),
    )?;
    wait_for_all_gates(&mut control, &pipeline, gates, limit).await?;
    let loaded_bytes = coordinator.rss_bytes()?;
    fleet.kill();
    Ok(Footprint {
        gates,
        sessions,
        empty_bytes,
        loaded_bytes,
    })
}
