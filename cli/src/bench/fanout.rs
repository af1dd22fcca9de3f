//! `cutover bench fanout`: how fast a plan change reaches every gate.
//!
//! Starts a coordinator (or targets `--endpoint`), then `--processes` client
//! processes holding `--gates` gates over `--sessions` sessions, and issues
//! `--updates` plan changes (a schedule far ahead, then its abort, in turn).
//! For each: the time from just before the control call until (a) every gate
//! holds the new epoch (each client process stamps the moment all its gates
//! have it; the latest stamp counts) and (b) the coordinator counts every
//! gate as acknowledged (seen on `WatchPipeline`). Prints p50/p99/max.
//!
//! `--stall-percent P` adds a client process holding P% of the gates and
//! sessions and, after the first `--updates`, stops it (SIGSTOP: its
//! connections stay open, it reads nothing) for `--updates` more: the live
//! gates' figures with and without a stalled consumer, side by side.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cutover_client::{Colour, ControlClient, Key, PipelineName};
use cutover_coordinator::admission::CallerLimits;
use cutover_coordinator::store::MemoryStore;
use cutover_coordinator::{Coordinator, CoordinatorConfig, Metrics, serve};
use cutover_core::ScheduleRequest;
use futures::StreamExt;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::coordinator_process::connect_control;
use super::etcd_fanout;
use super::fanout_client::unix_nanos;
use super::fleet::{Fleet, Share, layout, wait_for_all_gates};
use super::stats::Latencies;

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
    /// Put this share (percent) of the gates and sessions in one extra
    /// process, and stop it for a second round of `--updates`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub stall_percent: Option<u32>,
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
    /// The same for the live gates while one process is stopped.
    pub stalled: Option<Stalled>,
    /// Put → every etcd watcher has it, when measured.
    pub etcd: Option<Latencies>,
}

/// The figures of the round with a stopped client process.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stalled {
    /// Gates in the stopped process.
    pub gates: u32,
    /// Sessions in the stopped process.
    pub sessions: u32,
    /// Control call → every live gate holds the change.
    pub delivered: Latencies,
    /// Control call → the coordinator has every live gate's ack.
    pub acked: Latencies,
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
        if self.stall_percent.is_some() && self.sessions < 2 {
            bail!("--stall-percent needs at least 2 sessions");
        }
        Ok(())
    }

    /// The client processes: the live ones, then the one to stop, if any.
    fn layout(&self) -> Vec<Share> {
        let stalled = self.stall_percent.map(|percent| Share {
            gates: (self.gates * percent / 100).max(1),
            sessions: (self.sessions * percent / 100).max(1),
        });
        let (gates, sessions) = match stalled {
            Some(s) => (self.gates - s.gates, self.sessions - s.sessions),
            None => (self.gates, self.sessions),
        };
        let mut shares = layout(gates, sessions, self.processes.min(sessions));
        shares.extend(stalled);
        shares
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
        let pipeline = PipelineName::new(format!("fanout-{}", unix_nanos() % 1_000_000_000))?;
        let shares = self.layout();
        // Connected before the gates storm the listener.
        let mut control = connect_control(endpoint).await?;
        let mut fleet = Fleet::spawn(endpoint, pipeline.as_str(), &shares)?;
        wait_for_all_gates(
            &mut control,
            &pipeline,
            self.gates,
            Duration::from_secs(120),
        )
        .await?;
        let mut rounds = Rounds::start(&mut control, &pipeline).await?;

        let all: Vec<usize> = (0..shares.len()).collect();
        let (delivered, acked) = rounds
            .run(&mut control, &fleet, &all, self.gates, self.updates)
            .await?;
        let mut stalled = None;
        if self.stall_percent.is_some() {
            let index = shares.len() - 1;
            let pid = fleet.pids()[index];
            signal(pid, "-STOP")?;
            let live = &all[..index];
            let live_gates = self.gates - shares[index].gates;
            let round = rounds
                .run(&mut control, &fleet, live, live_gates, self.updates)
                .await;
            signal(pid, "-CONT")?;
            let (delivered, acked) = round?;
            stalled = Some(Stalled {
                gates: shares[index].gates,
                sessions: shares[index].sessions,
                delivered,
                acked,
            });
        }
        rounds.watcher.abort();
        fleet.kill();
        Ok(FanoutResult {
            gates: self.gates,
            sessions: self.sessions,
            processes: shares.len() as u32,
            updates: self.updates,
            delivered,
            acked,
            stalled,
            etcd: None,
        })
    }
}

/// Sends a signal to a process through `kill(1)`.
fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill {signal} {pid} failed");
    }
    Ok(())
}

/// Plan changes and the coordinator's ack counts, across rounds.
struct Rounds {
    pipeline: PipelineName,
    next: u32,
    /// (GREEN gates acked, epoch, Unix nanoseconds seen).
    acked: watch::Receiver<(u32, u64, u128)>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Rounds {
    async fn start(control: &mut ControlClient, pipeline: &PipelineName) -> anyhow::Result<Rounds> {
        let statuses = control.watch(pipeline).await?;
        let (acked_tx, acked) = watch::channel((0u32, 0u64, 0u128));
        let watcher = tokio::spawn(async move {
            let mut statuses = Box::pin(statuses);
            while let Some(Ok(status)) = statuses.next().await {
                acked_tx.send_replace((status.green.acked, status.plan.epoch.0, unix_nanos()));
            }
        });
        Ok(Rounds {
            pipeline: pipeline.clone(),
            next: 0,
            acked,
            watcher,
        })
    }

    /// `updates` plan changes; for each, the time until every process in
    /// `live` holds it and until `gates` gates acked it.
    async fn run(
        &mut self,
        control: &mut ControlClient,
        fleet: &Fleet,
        live: &[usize],
        gates: u32,
        updates: u32,
    ) -> anyhow::Result<(Latencies, Latencies)> {
        let (mut delivered, mut all_acked) = (Vec::new(), Vec::new());
        for _ in 0..updates {
            let started = unix_nanos();
            let epoch = self.change(control).await?;
            let last = fleet.delivered(epoch, live).await?;
            delivered.push(since(started, last));
            let (_, _, at) = *self
                .acked
                .wait_for(|&(acked, e, _)| e == epoch && acked >= gates)
                .await
                .context("the status stream ended")?;
            all_acked.push(since(started, at));
        }
        Ok((Latencies::of(&delivered), Latencies::of(&all_acked)))
    }

    /// A schedule far ahead or its abort, in turn; returns the new epoch.
    async fn change(&mut self, control: &mut ControlClient) -> anyhow::Result<u64> {
        let update = self.next;
        self.next += 1;
        let status = if update.is_multiple_of(2) {
            let at = Key((1i64 << 50) + i64::from(update));
            control
                .schedule(&self.pipeline, ScheduleRequest::at(Colour::Blue, at))
                .await?
        } else {
            control.abort(&self.pipeline).await?
        };
        Ok(status.plan.epoch.0)
    }
}

fn since(start: u128, end: u128) -> Duration {
    Duration::from_nanos(u64::try_from(end.saturating_sub(start)).unwrap_or(u64::MAX))
}

/// A coordinator on a memory store, on a free loopback port.
async fn embedded() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let coordinator = Coordinator::new(
        Arc::new(MemoryStore::new()),
        CoordinatorConfig {
            // The load generator opens every session from one address.
            caller_limits: CallerLimits::none(),
            ..CoordinatorConfig::default()
        },
        Metrics::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = serve(coordinator, listener, std::future::pending()).await;
    });
    Ok((endpoint, server))
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
    if let Some(stalled) = result.stalled {
        rows.push(("… one process stopped: has", stalled.delivered));
        rows.push(("… one process stopped: acked", stalled.acked));
    }
    if let Some(etcd) = result.etcd {
        rows.push(("etcd: every watcher has it", etcd));
    }
    if let Some(stalled) = result.stalled {
        println!(
            "  (second round: a process with {} gates over {} sessions stopped; the other gates measured)",
            stalled.gates, stalled.sessions
        );
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
        if let Some(stalled) = result.stalled {
            figures["stalled"] = serde_json::json!({
                "gates": stalled.gates,
                "sessions": stalled.sessions,
                "p50_ms": stalled.delivered.p50_ms,
                "p99_ms": stalled.delivered.p99_ms,
                "acked_p50_ms": stalled.acked.p50_ms,
                "acked_p99_ms": stalled.acked.p99_ms,
            });
        }
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
