//! A simulated Flink job: subtasks that replay their partition of the
//! stream through real gate clients (one client per simulated task-manager
//! process), buffer held records, emit watermarks on their own schedule,
//! and collect what they emit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use cutover_client::{
    Client, ClientConfig, Colour, Decision, Gate, GateIdentity, Key, Mode, PipelineName,
};
use cutover_core::Epoch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use super::stream::{Record, partition};

/// Held records above which a subtask stops and waits (back-pressure).
const MAX_BUFFERED: usize = 20_000;

/// How a job runs.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// Its colour.
    pub colour: Colour,
    /// Gate parallelism.
    pub parallelism: u32,
    /// Simulated task-manager processes (one gate client each).
    pub processes: u32,
    /// Salt of its key partitioning.
    pub salt: u64,
    /// Records a subtask processes between 1 ms pauses (its speed).
    pub batch: usize,
    /// Seed of its watermark timing.
    pub seed: u64,
    /// Watermark strategy bound (milliseconds).
    pub out_of_orderness_ms: i64,
    /// Keep-alive of its gate clients (how soon a silent coordinator is
    /// given up for the next).
    pub keepalive: Duration,
    /// How the job's clients reach `https://` coordinators.
    pub tls: cutover_client::ClientTls,
}

/// What a job emitted and how its clients saw the schedule.
#[derive(Debug, Default)]
pub struct JobOutcome {
    /// Ids of emitted records (all subtasks).
    pub emitted: Vec<u32>,
    /// Records dropped (owned by the other colour).
    pub dropped: u64,
    /// Most records a subtask held at once.
    pub max_held: usize,
    /// When each client installed the schedule's epoch.
    pub installed_at: Vec<Instant>,
}

/// One endpoint list per client process: process `i` starts from the
/// `i`-th endpoint and keeps the others, in order after it, to fail over to.
pub fn rotated_lists(endpoints: &[String]) -> Vec<String> {
    (0..endpoints.len())
        .map(|i| {
            let mut list = endpoints[i..].to_vec();
            list.extend_from_slice(&endpoints[..i]);
            list.join(",")
        })
        .collect()
}

/// Runs `spec` on `stream`; simulated process `i` connects to
/// `endpoints[i % len]`; `done` counts records processed; `watch_epoch`
/// names an epoch whose install time each client records.
pub async fn run_job(
    endpoints: Vec<String>,
    pipeline: PipelineName,
    spec: JobSpec,
    stream: Arc<Vec<Record>>,
    done: Arc<AtomicUsize>,
    watch_epoch: watch::Receiver<Option<Epoch>>,
) -> anyhow::Result<JobOutcome> {
    anyhow::ensure!(!endpoints.is_empty(), "no coordinator endpoint");
    let mut clients = Vec::new();
    for process in 0..spec.processes {
        let endpoint = endpoints[process as usize % endpoints.len()].clone();
        let config = ClientConfig::new(endpoint)
            .client_name(format!("{}-tm-{process}", spec.colour))
            .progress_interval(Duration::from_millis(50))
            .keepalive(spec.keepalive)
            .tls(spec.tls.clone());
        clients.push(Arc::new(Client::connect(config)?));
    }
    let mut installs = Vec::new();
    for client in &clients {
        let (client, pipeline, mut epoch) = (client.clone(), pipeline.clone(), watch_epoch.clone());
        installs.push(tokio::spawn(async move {
            let epoch = *epoch.wait_for(Option::is_some).await.ok()?;
            client.wait_for_epoch(&pipeline, epoch?).await;
            Some(Instant::now())
        }));
    }
    let mut subtasks = Vec::new();
    for index in 0..spec.parallelism {
        let client = &clients[(index % spec.processes) as usize];
        let gate = client.gate(GateIdentity {
            pipeline: pipeline.clone(),
            colour: spec.colour,
            job_id: format!("demo-{}", spec.colour),
            gate_uid: "sink-gate".into(),
            subtask_index: index,
            parallelism: spec.parallelism,
            attempt: 0,
        })?;
        let records: Vec<Record> = stream
            .iter()
            .filter(|r| partition(r.id, spec.salt, spec.parallelism) == index)
            .copied()
            .collect();
        let rng = StdRng::seed_from_u64(spec.seed ^ u64::from(index));
        subtasks.push(tokio::spawn(subtask(
            gate,
            records,
            spec.clone(),
            rng,
            done.clone(),
        )));
    }
    let mut outcome = JobOutcome::default();
    for task in subtasks {
        let (emitted, dropped, max_held) = task.await.context("subtask panicked")?;
        outcome.emitted.extend(emitted);
        outcome.dropped += dropped;
        outcome.max_held = outcome.max_held.max(max_held);
    }
    for install in installs {
        install.abort();
        if let Ok(Some(at)) = install.await {
            outcome.installed_at.push(at);
        }
    }
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            client.shutdown().await;
        }
    }
    Ok(outcome)
}

async fn subtask(
    mut gate: Gate,
    records: Vec<Record>,
    spec: JobSpec,
    mut rng: StdRng,
    done: Arc<AtomicUsize>,
) -> (Vec<u32>, u64, usize) {
    let mut emitted = Vec::with_capacity(records.len());
    // Held records with the key they were held at.
    let mut held: VecDeque<(Key, Record)> = VecDeque::new();
    let mut max_held = 0;
    let mut max_ts = i64::MIN;
    let mut watermark = Key::MIN;
    // Each subtask emits watermarks on its own schedule.
    let mut next_watermark = rng.random_range(20..200);
    for (n, record) in records.iter().enumerate() {
        // EVENT_TIME decides on the record's timestamp, WATERMARK on the
        // subtask's watermark when the record arrives.
        let key = match gate.mode() {
            Mode::EventTime => Key(record.ts),
            Mode::Watermark => watermark,
        };
        match gate.decide(key) {
            Decision::Emit => emitted.push(record.id),
            Decision::Drop => {}
            Decision::Hold => held.push_back((key, *record)),
        }
        max_ts = max_ts.max(record.ts);
        next_watermark -= 1;
        if next_watermark == 0 {
            next_watermark = rng.random_range(20..200);
            watermark = watermark.max(Key(max_ts - spec.out_of_orderness_ms - 1));
            gate.observe_watermark(watermark);
            release(&mut gate, &mut held, &mut emitted);
        }
        max_held = max_held.max(held.len());
        if held.len() >= MAX_BUFFERED
            && let Some(&(key, _)) = held.front()
        {
            gate.wait_until_decidable(key).await;
            release(&mut gate, &mut held, &mut emitted);
        }
        if n % spec.batch == spec.batch - 1 {
            done.fetch_add(spec.batch, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // End of input: the last watermark, then wait out what is held.
    gate.observe_watermark(Key(max_ts));
    while let Some(lowest) = held.iter().map(|(key, _)| *key).min() {
        gate.wait_until_decidable(lowest).await;
        release(&mut gate, &mut held, &mut emitted);
    }
    done.fetch_add(records.len() % spec.batch, Ordering::Relaxed);
    gate.finish();
    let dropped = gate.dropped();
    (emitted, dropped, max_held)
}

/// Decides every held record that became decidable.
fn release(gate: &mut Gate, held: &mut VecDeque<(Key, Record)>, emitted: &mut Vec<u32>) {
    if held.is_empty() {
        return;
    }
    held.retain(|&(key, record)| {
        if gate.peek(key) == Decision::Hold {
            return true;
        }
        if gate.decide(key) == Decision::Emit {
            emitted.push(record.id);
        }
        false
    });
    let lowest = held.iter().map(|(key, _)| *key).min();
    gate.set_held(held.len() as u64, lowest);
}
