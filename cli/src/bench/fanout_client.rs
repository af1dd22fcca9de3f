//! `cutover bench fanout-client` (internal): one client process of the
//! fan-out benchmark. Opens `--sessions` sessions, spreads `--gates` gates
//! over them, and prints `epoch <E> <unix-nanos>` each time every gate of the
//! process holds epoch E or later. Exits when its standard input closes.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use cutover_client::{Client, ClientConfig, Colour, GateIdentity, PipelineName};
use cutover_core::Epoch;
use tokio::io::AsyncReadExt;

/// Flags of `cutover bench fanout-client`.
#[derive(clap::Args, Debug, Clone)]
pub struct FanoutClientArgs {
    /// Coordinator address.
    #[arg(long)]
    pub endpoint: String,
    /// Pipeline the gates belong to.
    #[arg(long)]
    pub pipeline: String,
    /// Sessions (clients) in this process.
    #[arg(long)]
    pub sessions: u32,
    /// Gates in this process.
    #[arg(long)]
    pub gates: u32,
    /// Subtask index of this process's first gate.
    #[arg(long)]
    pub first_subtask: u32,
    /// Gates over all processes (the parallelism).
    #[arg(long)]
    pub parallelism: u32,
}

/// Nanoseconds since the Unix epoch: comparable between processes of one
/// machine.
pub fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl FanoutClientArgs {
    /// Runs until standard input closes.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let pipeline = PipelineName::new(self.pipeline.clone())?;
        let sessions = self.sessions.max(1);
        let clients: Vec<Client> = (0..sessions)
            .map(|i| {
                Client::connect(
                    ClientConfig::new(self.endpoint.clone())
                        .client_name(format!("fanout-{}-{i}", self.first_subtask)),
                )
            })
            .collect::<Result<_, _>>()
            .context("connecting")?;
        let mut gates = Vec::with_capacity(self.gates as usize);
        for i in 0..self.gates {
            let identity = GateIdentity {
                pipeline: pipeline.clone(),
                colour: Colour::Green,
                job_id: "fanout".into(),
                gate_uid: "gate".into(),
                subtask_index: self.first_subtask + i,
                parallelism: self.parallelism,
                attempt: 0,
            };
            gates.push(clients[(i % sessions) as usize].gate(identity)?);
        }
        let stdin_closed = async {
            let mut sink = Vec::new();
            let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        };
        let report = async {
            let mut next = Epoch(1);
            loop {
                for client in &clients {
                    client.wait_for_epoch(&pipeline, next).await;
                }
                let held = clients
                    .iter()
                    .filter_map(|c| c.plan(&pipeline).map(|p| p.epoch))
                    .min()
                    .unwrap_or(next);
                println!("epoch {} {}", held.0, unix_nanos());
                next = held.next();
            }
        };
        tokio::select! {
            _ = stdin_closed => {}
            _ = report => {}
        }
        drop(gates);
        Ok(ExitCode::SUCCESS)
    }
}
