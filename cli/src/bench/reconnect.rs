//! `cutover bench reconnect`: the reconnect storm. A `cutover serve`
//! process on a file store (or `--store`) holds N gates over P sessions at
//! an epoch past the first; it is killed with SIGKILL and started again on
//! the same port and store. Measured per round: from the kill until the new
//! process answers, and until it counts every gate connected and acked at
//! the current epoch.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cutover_client::{Colour, Key, PipelineName};
use cutover_core::ScheduleRequest;
use serde::Serialize;

use super::coordinator_process::{CoordinatorProcess, free_address};
use super::fanout_client::unix_nanos;
use super::fleet::{Fleet, layout, wait_for_all_gates};
use super::stats::Latencies;

/// Flags of `cutover bench reconnect`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReconnectArgs {
    /// Gates in all.
    #[arg(long, default_value_t = 10_000)]
    pub gates: u32,
    /// Sessions the gates are spread over.
    #[arg(long, default_value_t = 100)]
    pub sessions: u32,
    /// Client processes.
    #[arg(long, default_value_t = 4)]
    pub processes: u32,
    /// Kill-and-restart rounds.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// The coordinator's store (`file:PATH`, `etcd:URL`); a file in a
    /// temporary folder by default.
    #[arg(long)]
    pub store: Option<String>,
    /// Print the result as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// What the rounds measured.
#[derive(Debug, Serialize)]
pub struct ReconnectResult {
    /// Gates.
    pub gates: u32,
    /// Sessions.
    pub sessions: u32,
    /// Kill → the new process answers.
    pub serving: Latencies,
    /// Kill → every gate connected and acked at the current epoch.
    pub all_back: Latencies,
}

impl ReconnectArgs {
    /// Runs the rounds and prints the figures.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if self.gates == 0 || self.sessions == 0 || self.sessions > self.gates {
            bail!("--sessions must lie between 1 and --gates ({})", self.gates);
        }
        if self.processes == 0 || self.rounds == 0 {
            bail!("--processes and --rounds must be positive");
        }
        let tempdir = tempfile::tempdir().context("creating a temporary folder")?;
        let store = self
            .store
            .clone()
            .unwrap_or_else(|| format!("file:{}", tempdir.path().join("state").display()));
        let limit = Duration::from_secs(120);
        let mut coordinator = CoordinatorProcess::start(free_address()?, &store, limit).await?;
        let pipeline = PipelineName::new(format!("reconnect-{}", unix_nanos() % 1_000_000_000))?;
        let mut control = coordinator.control().await?;
        let mut fleet = Fleet::spawn(
            &coordinator.endpoint(),
            pipeline.as_str(),
            &layout(self.gates, self.sessions, self.processes.min(self.sessions)),
        )?;
        wait_for_all_gates(&mut control, &pipeline, self.gates, limit).await?;
        // Move past the first epoch so "current" means something.
        let status = control
            .schedule(
                &pipeline,
                ScheduleRequest::at(Colour::Blue, Key(1i64 << 50)),
            )
            .await?;
        let epoch = status.plan.epoch;
        wait_for_all_gates(&mut control, &pipeline, self.gates, limit).await?;

        let (mut serving, mut all_back) = (Vec::new(), Vec::new());
        for _ in 0..self.rounds {
            let listen = coordinator.listen();
            let killed = Instant::now();
            coordinator.kill().await?;
            coordinator = CoordinatorProcess::start(listen, &store, limit).await?;
            serving.push(killed.elapsed());
            let mut control = coordinator.control().await?;
            wait_for_all_gates(&mut control, &pipeline, self.gates, limit).await?;
            all_back.push(killed.elapsed());
            let current = control.get(&pipeline).await?.plan.epoch;
            if current != epoch {
                bail!("the epoch moved from {epoch} to {current} across a restart");
            }
        }
        fleet.kill();
        let result = ReconnectResult {
            gates: self.gates,
            sessions: self.sessions,
            serving: Latencies::of(&serving),
            all_back: Latencies::of(&all_back),
        };
        println!(
            "cutover bench reconnect: {} gates over {} sessions, {} kill -9 and restart rounds, store {store}",
            result.gates, result.sessions, self.rounds
        );
        for (what, l) in [
            ("kill → serving again", result.serving),
            ("kill → every gate back", result.all_back),
        ] {
            println!(
                "  {what:<24} p50 {:>9.1} ms   max {:>9.1} ms",
                l.p50_ms, l.max_ms
            );
        }
        if self.json {
            println!("{}", serde_json::to_string(&result)?);
        }
        Ok(ExitCode::SUCCESS)
    }
}
