//! Two simulated jobs (the demo's workload) against coordinators given by
//! endpoint, with the exactly-once tally.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use cutover_cli::demo::job::{JobOutcome, JobSpec, run_job};
use cutover_cli::demo::stream::StreamSpec;
use cutover_core::{Colour, Epoch, PipelineName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running job.
pub struct RunningJob {
    /// Records processed so far.
    pub done: Arc<AtomicUsize>,
    task: JoinHandle<anyhow::Result<JobOutcome>>,
    _epoch: watch::Sender<Option<Epoch>>,
}

impl RunningJob {
    /// Starts `colour` with `parallelism` gates over `processes` clients.
    pub fn start(
        endpoints: Vec<String>,
        pipeline: &PipelineName,
        stream: &StreamSpec,
        colour: Colour,
        parallelism: u32,
        processes: u32,
    ) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let (epoch, epoch_rx) = watch::channel(None);
        let spec = JobSpec {
            colour,
            parallelism,
            processes,
            salt: if colour == Colour::Green {
                0x6EE7
            } else {
                0xB1E
            },
            batch: 4,
            seed: stream.seed,
            out_of_orderness_ms: stream.out_of_orderness_ms(),
        };
        let task = tokio::spawn(run_job(
            endpoints,
            pipeline.clone(),
            spec,
            Arc::new(stream.generate()),
            done.clone(),
            epoch_rx,
        ));
        RunningJob {
            done,
            task,
            _epoch: epoch,
        }
    }

    /// Waits until `fraction` of `total` records were processed.
    pub async fn reach(&self, total: usize, fraction: f64) {
        let target = (total as f64 * fraction) as usize;
        // Job progress is a counter with no event to await.
        while self.done.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for the job to end.
    pub async fn finish(self) -> anyhow::Result<JobOutcome> {
        self.task.await.context("job panicked")?
    }
}

/// (duplicates, gaps) of two jobs' outputs over `records` records.
pub fn tally(records: usize, a: &JobOutcome, b: &JobOutcome) -> (usize, usize) {
    let mut counts = vec![0usize; records];
    for &id in a.emitted.iter().chain(&b.emitted) {
        counts[id as usize] += 1;
    }
    (
        counts.iter().map(|&c| c.saturating_sub(1)).sum(),
        counts.iter().filter(|&&c| c == 0).count(),
    )
}

/// The stream both jobs replay.
pub fn stream(records: u32, seed: u64) -> StreamSpec {
    StreamSpec {
        records,
        start_ms: 1_700_000_000_000,
        step_ms: 10,
        jitter_ms: 200,
        seed,
    }
}
