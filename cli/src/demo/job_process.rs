//! `cutover job`: one colour of the demo's simulated job as a process of its
//! own, so that a test can place each job on a host of its own (a network
//! namespace standing for a cluster) and count what the two emitted.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use anyhow::Context;
use clap::Args;
use cutover_core::PipelineName;
use tokio::sync::watch;

use super::job::{JobSpec, rotated_lists, run_job};
use super::stream::StreamSpec;
use crate::control::ColourArg;

/// Flags of `cutover job`.
#[derive(Args, Debug)]
pub struct JobArgs {
    /// Coordinator endpoints, comma-separated: simulated process `i` dials
    /// them starting from the `i`-th (and fails over along the list).
    #[arg(long)]
    pub coordinator: String,
    /// Pipeline name.
    #[arg(long)]
    pub pipeline: String,
    /// Colour of this job.
    #[arg(long, value_enum)]
    pub colour: ColourArg,
    /// Records in the stream (both jobs replay the same stream).
    #[arg(long, default_value_t = 100_000)]
    pub records: u32,
    /// Seed of the stream.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Gate parallelism.
    #[arg(long, default_value_t = 4)]
    pub parallelism: u32,
    /// Simulated task-manager processes (one gate client each).
    #[arg(long, default_value_t = 2)]
    pub processes: u32,
    /// Records a subtask processes between 1 ms pauses (its speed).
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Keep-alive of the gate clients: a coordinator silent for about twice
    /// this long is given up for the next endpoint.
    #[arg(long, default_value = "10s")]
    pub keepalive: humantime::Duration,
    /// File to write the ids of the emitted records to, one per line.
    #[arg(long)]
    pub emitted: PathBuf,
}

impl JobArgs {
    /// Runs the job to the end of its input, writes what it emitted and
    /// prints a JSON summary line.
    pub async fn run(self) -> anyhow::Result<std::process::ExitCode> {
        let pipeline = PipelineName::new(&self.pipeline)?;
        let endpoints: Vec<String> = self
            .coordinator
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from)
            .collect();
        anyhow::ensure!(!endpoints.is_empty(), "--coordinator names no endpoint");
        let lists = rotated_lists(&endpoints);
        let stream = StreamSpec {
            records: self.records,
            start_ms: 1_700_000_000_000,
            step_ms: 10,
            jitter_ms: 200,
            seed: self.seed,
        };
        let colour = self.colour.into();
        let spec = JobSpec {
            keepalive: self.keepalive.into(),
            tls: cutover_client::ClientTls::from_env(),
            colour,
            parallelism: self.parallelism,
            processes: self.processes,
            salt: if colour == cutover_core::Colour::Green {
                0x6EE7
            } else {
                0xB1E
            },
            batch: self.batch.max(1),
            seed: self.seed,
            out_of_orderness_ms: stream.out_of_orderness_ms(),
        };
        let (_epoch, no_epoch) = watch::channel(None);
        let outcome = run_job(
            lists,
            pipeline,
            spec,
            Arc::new(stream.generate()),
            Arc::new(AtomicUsize::new(0)),
            no_epoch,
        )
        .await?;
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&self.emitted)
                .with_context(|| format!("creating {}", self.emitted.display()))?,
        );
        for id in &outcome.emitted {
            writeln!(file, "{id}")?;
        }
        file.flush()?;
        println!(
            "{}",
            serde_json::json!({
                "colour": colour.to_string(),
                "emitted": outcome.emitted.len(),
                "dropped": outcome.dropped,
                "max_held": outcome.max_held,
            })
        );
        Ok(std::process::ExitCode::SUCCESS)
    }
}
