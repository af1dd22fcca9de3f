//! Two simulated jobs (the demo's workload) against coordinators given by
//! endpoint, in this process or as processes of their own inside hosts of a
//! test network, with the exactly-once tally.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use cutover_cli::demo::job::{JobOutcome, JobSpec, run_job};
use cutover_cli::demo::stream::StreamSpec;
use cutover_core::{Colour, Epoch, PipelineName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::netns::Host;

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
            keepalive: Duration::from_secs(10),
            tls: cutover_client::ClientTls::default(),
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
    tally_ids(records, &[&a.emitted, &b.emitted])
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

/// One colour's job as a `cutover job` process inside a host of a test
/// network, writing what it emitted to a file.
pub struct JobProcess {
    child: Option<std::process::Child>,
    emitted: tempfile::NamedTempFile,
    colour: Colour,
}

/// How a [`JobProcess`] runs.
#[derive(Clone, Debug)]
pub struct JobProcessSpec {
    /// Endpoints its processes dial (each from a different first one).
    pub endpoints: Vec<String>,
    /// Pipeline name.
    pub pipeline: String,
    /// Records of the stream.
    pub records: u32,
    /// Seed of the stream.
    pub seed: u64,
    /// Gate parallelism.
    pub parallelism: u32,
    /// Gate clients.
    pub processes: u32,
    /// Records per subtask between 1 ms pauses.
    pub batch: usize,
    /// Keep-alive of its gate clients.
    pub keepalive: Duration,
}

/// What a [`JobProcess`] emitted.
#[derive(Debug)]
pub struct JobProcessOutcome {
    /// Ids of the records it emitted.
    pub emitted: Vec<u32>,
    /// Most records a subtask held at once.
    pub max_held: u64,
}

impl JobProcess {
    /// Starts `colour`'s job inside `host`.
    pub fn start_in(host: &Host, spec: &JobProcessSpec, colour: Colour) -> anyhow::Result<Self> {
        let emitted = tempfile::NamedTempFile::new()?;
        let child = host
            .command(crate::process::cutover_binary()?)
            .arg("job")
            .args(["--coordinator", &spec.endpoints.join(",")])
            .args(["--pipeline", &spec.pipeline])
            .args(["--colour", &colour.to_string().to_lowercase()])
            .args(["--records", &spec.records.to_string()])
            .args(["--seed", &spec.seed.to_string()])
            .args(["--parallelism", &spec.parallelism.to_string()])
            .args(["--processes", &spec.processes.to_string()])
            .args(["--batch", &spec.batch.to_string()])
            .arg("--keepalive")
            .arg(format!("{}ms", spec.keepalive.as_millis()))
            .arg("--emitted")
            .arg(emitted.path())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .context("starting cutover job")?;
        Ok(JobProcess {
            child: Some(child),
            emitted,
            colour,
        })
    }

    /// Waits (off the async runtime) for the job to end.
    pub async fn finish(mut self) -> anyhow::Result<JobProcessOutcome> {
        let colour = self.colour;
        let child = self
            .child
            .take()
            .context("the job was already waited for")?;
        tokio::task::spawn_blocking(move || {
            let output = child.wait_with_output()?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            anyhow::ensure!(
                output.status.success(),
                "the {colour} job failed ({}):\n{stdout}",
                output.status
            );
            let summary: serde_json::Value =
                serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
            let emitted = std::fs::read_to_string(self.emitted.path())?
                .lines()
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()?;
            Ok(JobProcessOutcome {
                emitted,
                max_held: summary["max_held"].as_u64().unwrap_or(0),
            })
        })
        .await
        .context("waiting for a job process")?
    }
}

impl Drop for JobProcess {
    fn drop(&mut self) {
        // A child is left only when a test failed before the job ended.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// (duplicates, gaps) over `records` records of everything `outputs`
/// emitted.
pub fn tally_ids(records: usize, outputs: &[&[u32]]) -> (usize, usize) {
    let mut counts = vec![0usize; records];
    for &id in outputs.iter().flat_map(|o| o.iter()) {
        counts[id as usize] += 1;
    }
    (
        counts.iter().map(|&c| c.saturating_sub(1)).sum(),
        counts.iter().filter(|&&c| c == 0).count(),
    )
}
