//! `cutover bench fanout`: how fast a plan change reaches every gate.
//!
//! Starts a coordinator (or targets `--endpoint`), then `--processes` client
//! processes holding `--gates` gates over `--sessions` sessions, and issues
//! `--updates` plan changes (a schedule far ahead, then its abort, in turn).
//! For each: the time from just before the control call until (a) every gate
//! holds the new epoch (each client process stamps the moment all its gates
//! have it; the latest stamp counts) and (b) the coordinator counts every
//! gate as acknowledged (seen on `WatchPipeline`). Prints p50/p99/max.

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cutover_coordinator::store::MemoryStore;
use cutover_coordinator::{Coordinator, CoordinatorConfig, Metrics, serve};
use cutover_proto::v1;
use cutover_proto::v1::control_service_client::ControlServiceClient;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tonic::transport::Channel;

use super::etcd_fanout;
use super::fanout_client::unix_nanos;
use super::share;
use super::stats::Latencies;
use crate::demo::wait_for_status;

/// Flags of `cutover bench fanout`.
#[derive(clap::Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Gates in all.
    #[arg(long, default_value_t = 1_000)]
    pub gates: u32,
    /// Sessions (gRPC streams) the gates are spread over.
    #[arg(long, default_value_t = 100)]
    pub sessions: u32,
    /// Client processes the sessions are spread over.
    #[arg(long, default_value_t = 4)]
    pub processes: u32,
    /// Plan changes to measure.
    #[arg(long, default_value_t = 200)]
    pub updates: u32,
    /// A running coordinator to measure instead of an embedded one.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Also run the equivalent workload on this etcd (N watchers of one
    /// key over P connections) and print both.
    #[arg(long)]
    pub against_etcd: Option<String>,
    /// Print the result as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct FanoutResult {
    /// Gates in all.
    pub gates: u32,
    /// Sessions.
    pub sessions: u32,
    /// Client processes.
    pub processes: u32,
    /// Plan changes measured.
    pub updates: u32,
    /// Control call → every gate holds the change.
    pub delivered: Latencies,
    /// Control call → the coordinator has every gate's ack.
    pub acked: Latencies,
    /// Put → every etcd watcher has it, when measured.
    pub etcd: Option<Latencies>,
}

impl FanoutArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if self.gates == 0 || self.updates == 0 {
            bail!("--gates and --updates must be positive");
        }
        if self.sessions == 0 || self.sessions > self.gates {
            bail!("--sessions must lie between 1 and --gates ({})", self.gates);
        }
        if self.processes == 0 || self.processes > self.sessions {
            bail!(
                "--processes must lie between 1 and --sessions ({})",
                self.sessions
            );
        }
        Ok(())
    }

    /// Runs the benchmark and prints its figures.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        self.validate()?;
        let (endpoint, _server) = match &self.endpoint {
            Some(endpoint) => (endpoint.clone(), None),
            None => {
                let (endpoint, server) = embedded().await?;
                (endpoint, Some(server))
            }
        };
        let mut result = self.measure(&endpoint).await?;
        if let Some(etcd) = &self.against_etcd {
            let etcd = if etcd.contains("://") {
                etcd.clone()
            } else {
                format!("http://{etcd}")
            };
            result.etcd =
                Some(etcd_fanout::measure(&etcd, self.gates, self.sessions, self.updates).await?);
        }
        print(&result, self.json);
        Ok(ExitCode::SUCCESS)
    }

    async fn measure(&self, endpoint: &str) -> anyhow::Result<FanoutResult> {
        let pipeline = format!("fanout-{}", unix_nanos() % 1_000_000_000);
        let (reports_tx, reports) = watch::channel(vec![(0u64, 0u128); self.processes as usize]);
        let reports_tx = Arc::new(reports_tx);
        let mut processes = Vec::new();
        let mut first_subtask = 0;
        for k in 0..self.processes {
            let sessions = share(self.sessions, self.processes, k);
            let first_session = (0..k)
                .map(|j| share(self.sessions, self.processes, j))
                .sum::<u32>();
            let gates = (first_session..first_session + sessions)
                .map(|s| share(self.gates, self.sessions, s))
                .sum::<u32>();
            processes.push(spawn_client(
                endpoint,
                &pipeline,
                sessions,
                gates,
                first_subtask,
                self.gates,
                k as usize,
                reports_tx.clone(),
            )?);
            first_subtask += gates;
        }

        let mut control = ControlServiceClient::connect(endpoint.to_string())
            .await
            .context("connecting to the control service")?;
        let (acked_tx, mut acked) = watch::channel((0u64, 0u128));
        wait_for_all_gates(&mut control, &pipeline, self.gates).await?;
        let gates = self.gates;
        let mut statuses = control
            .watch_pipeline(v1::WatchPipelineRequest {
                pipeline: pipeline.clone(),
            })
            .await?
            .into_inner();
        let watcher = tokio::spawn(async move {
            while let Ok(Some(status)) = statuses.message().await {
                let all = status.green.as_ref().is_some_and(|g| g.acked == gates);
                let epoch = status.plan.as_ref().map_or(0, |p| p.epoch);
                if all && epoch > acked_tx.borrow().0 {
                    acked_tx.send_replace((epoch, unix_nanos()));
                }
            }
        });

        let (mut delivered, mut all_acked) = (Vec::new(), Vec::new());
        let far = 1i64 << 50;
        for update in 0..self.updates {
            let started = unix_nanos();
            let status = if update % 2 == 0 {
                control
                    .schedule_transition(v1::ScheduleTransitionRequest {
                        pipeline: pipeline.clone(),
                        target: v1::Colour::Blue as i32,
                        at: Some(v1::schedule_transition_request::At::Key(
                            far + i64::from(update),
                        )),
                        mode: v1::DecisionMode::EventTime as i32,
                        allowed_lateness: 0,
                        auto_promote: true,
                    })
                    .await?
            } else {
                control
                    .abort_transition(v1::AbortTransitionRequest {
                        pipeline: pipeline.clone(),
                    })
                    .await?
            }
            .into_inner();
            let epoch = status.plan.as_ref().map_or(0, |p| p.epoch);
            let mut held = reports.clone();
            let all = held
                .wait_for(|r| r.iter().all(|&(e, _)| e >= epoch))
                .await
                .context("a client process ended")?;
            let last = all.iter().map(|&(_, at)| at).max().unwrap_or(started);
            drop(all);
            delivered.push(since(started, last));
            let (_, at) = *acked
                .wait_for(|&(e, _)| e >= epoch)
                .await
                .context("the status stream ended")?;
            all_acked.push(since(started, at));
        }
        watcher.abort();
        for process in &mut processes {
            let _ = process.start_kill();
        }
        Ok(FanoutResult {
            gates: self.gates,
            sessions: self.sessions,
            processes: self.processes,
            updates: self.updates,
            delivered: Latencies::of(&delivered),
            acked: Latencies::of(&all_acked),
            etcd: None,
        })
    }
}

fn since(start: u128, end: u128) -> Duration {
    Duration::from_nanos(u64::try_from(end.saturating_sub(start)).unwrap_or(u64::MAX))
}

/// A coordinator on a memory store, on a free loopback port.
async fn embedded() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let coordinator = Coordinator::new(
        Arc::new(MemoryStore::new()),
        CoordinatorConfig::default(),
        Metrics::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = serve(coordinator, listener, std::future::pending()).await;
    });
    Ok((endpoint, server))
}

#[allow(clippy::too_many_arguments)]
fn spawn_client(
    endpoint: &str,
    pipeline: &str,
    sessions: u32,
    gates: u32,
    first_subtask: u32,
    parallelism: u32,
    index: usize,
    reports: Arc<watch::Sender<Vec<(u64, u128)>>>,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the cutover binary")?;
    let mut child = Command::new(exe)
        .args([
            "bench",
            "fanout-client",
            "--endpoint",
            endpoint,
            "--pipeline",
            pipeline,
        ])
        .args([
            "--sessions",
            &sessions.to_string(),
            "--gates",
            &gates.to_string(),
        ])
        .args(["--first-subtask", &first_subtask.to_string()])
        .args(["--parallelism", &parallelism.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a client process")?;
    let stdout = child.stdout.take().context("client stdout")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut fields = line.split_whitespace().skip(1);
            let epoch = fields.next().and_then(|f| f.parse::<u64>().ok());
            let at = fields.next().and_then(|f| f.parse::<u128>().ok());
            if let (Some(epoch), Some(at)) = (epoch, at) {
                reports.send_modify(|r| r[index] = (epoch, at));
            }
        }
    });
    Ok(child)
}

/// Waits until the coordinator sees every gate connected and acked.
async fn wait_for_all_gates(
    control: &mut ControlServiceClient<Channel>,
    pipeline: &str,
    gates: u32,
) -> anyhow::Result<()> {
    // The pipeline exists once the first gate arrived: poll for that only.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let request = v1::GetPipelineRequest {
            pipeline: pipeline.to_string(),
        };
        match control.get_pipeline(request).await {
            Ok(_) => break,
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => return Err(status.into()),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no gate arrived within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_acked = |s: &v1::PipelineStatus| {
        let green = s.green.unwrap_or_default();
        green.connected == gates && green.acked == gates
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        wait_for_status(control, pipeline, all_acked),
    )
    .await
    .context("not every gate connected within 120 s")??;
    Ok(())
}

fn print(result: &FanoutResult, json: bool) {
    println!(
        "cutover bench fanout: {} gates, {} sessions, {} client processes, {} updates",
        result.gates, result.sessions, result.processes, result.updates
    );
    let mut rows = vec![
        ("cutover: every gate has it", result.delivered),
        ("cutover: every gate acked", result.acked),
    ];
    if let Some(etcd) = result.etcd {
        rows.push(("etcd: every watcher has it", etcd));
    }
    for (what, l) in rows {
        println!(
            "  {what:<28} p50 {:>9.3} ms   p99 {:>9.3} ms   max {:>9.3} ms",
            l.p50_ms, l.p99_ms, l.max_ms
        );
    }
    let ratio = |ours: f64, theirs: f64| {
        if theirs > 0.0 {
            ours / theirs
        } else {
            f64::NAN
        }
    };
    if let Some(etcd) = result.etcd {
        println!(
            "  cutover/etcd                 p50 {:>9.3}      p99 {:>9.3}",
            ratio(result.delivered.p50_ms, etcd.p50_ms),
            ratio(result.delivered.p99_ms, etcd.p99_ms)
        );
    }
    if json {
        let mut figures = serde_json::json!({
            "cutover": {
                "gates": result.gates,
                "sessions": result.sessions,
                "processes": result.processes,
                "updates": result.updates,
                "p50_ms": result.delivered.p50_ms,
                "p99_ms": result.delivered.p99_ms,
                "max_ms": result.delivered.max_ms,
                "acked_p50_ms": result.acked.p50_ms,
                "acked_p99_ms": result.acked.p99_ms,
                "acked_max_ms": result.acked.max_ms,
            }
        });
        if let Some(etcd) = result.etcd {
            figures["etcd"] = serde_json::json!({
                "watchers": result.gates,
                "connections": result.sessions,
                "p50_ms": etcd.p50_ms,
                "p99_ms": etcd.p99_ms,
                "max_ms": etcd.max_ms,
            });
            figures["ratio"] = serde_json::json!({
                "p50": ratio(result.delivered.p50_ms, etcd.p50_ms),
                "p99": ratio(result.delivered.p99_ms, etcd.p99_ms),
            });
        }
        println!("{figures}");
    }
}
