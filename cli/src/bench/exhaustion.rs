//! `cutover bench exhaustion`: what hostile clients cost a coordinator.
//!
//! Each attack runs against a fresh `cutover serve` process over mutual TLS
//! (memory store) serving a pipeline of GREEN gates. Under the attack, plan
//! changes of that pipeline are timed until every gate acknowledged them;
//! the coordinator's resident memory is read before, at its peak (VmHWM)
//! and after:
//!
//! 1. TCP connections that stay idle (under TLS: never start the handshake);
//! 2. connections that start a TLS handshake and never finish it;
//! 3. gate sessions that never read what the coordinator sends, while their
//!    pipeline's plan changes;
//! 4. one gate message of 64 MiB.
//!
//! For 1 and 2 it also counts the connections the coordinator closed by
//! itself (the handshake timeout).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use cutover_client::{
    Client, ClientConfig, ClientTls, Colour, ControlClient, GateIdentity, Key, PipelineName,
};
use cutover_core::ScheduleRequest;
use serde::Serialize;

use super::coordinator_process::{CoordinatorProcess, free_address};
use super::hostile::{
    UnreadSessions, closed_by_server, idle_connections, oversized_hello, unfinished_handshakes,
};
use super::stats::Latencies;
use crate::pki::TestPki;

/// Flags of `cutover bench exhaustion`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExhaustionArgs {
    /// Idle TCP connections. The coordinator holds one descriptor per
    /// connection and this process another: both must fit the open-file
    /// limit (raised to the hard limit; beyond it needs CAP_SYS_RESOURCE).
    #[arg(long, default_value_t = 19_000)]
    pub idle_connections: usize,
    /// Connections that never finish the TLS handshake.
    #[arg(long, default_value_t = 1_000)]
    pub handshakes: usize,
    /// Gate sessions never read.
    #[arg(long, default_value_t = 1_000)]
    pub unread_sessions: u32,
    /// Size of the oversized message, in MiB.
    #[arg(long, default_value_t = 64)]
    pub message_mib: usize,
    /// Gates served meanwhile.
    #[arg(long, default_value_t = 100)]
    pub gates: u32,
    /// Timed plan changes per measurement.
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
    /// The coordinator's `--handshake-timeout`.
    #[arg(long, default_value = "10s", value_parser = crate::flags::positive_duration)]
    pub handshake_timeout: Duration,
    /// Print the result as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// One attack's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Attack {
    /// What was done.
    pub name: String,
    /// Resident memory before, in MiB.
    pub rss_before_mib: f64,
    /// The most resident memory the coordinator had (VmHWM), in MiB.
    pub rss_peak_mib: f64,
    /// Resident memory once it ended (or was cut off), in MiB.
    pub rss_after_mib: f64,
    /// Plan changes to the served gates under the attack.
    pub served: Latencies,
    /// What the coordinator did about it.
    pub outcome: String,
}

/// Served gates and the plan changes timed on them.
struct Served {
    control: ControlClient,
    pipeline: PipelineName,
    gates: u32,
    next: i64,
    _client: Client,
    _gates: Vec<cutover_client::Gate>,
}

impl Served {
    async fn start(
        coordinator: &CoordinatorProcess,
        tls: &ClientTls,
        gates: u32,
    ) -> anyhow::Result<Self> {
        let pipeline = PipelineName::new("served")?;
        let mut control = coordinator.control().await?;
        control.create(&pipeline, Colour::Green, None).await?;
        let client = Client::connect(ClientConfig::new(coordinator.endpoint()).tls(tls.clone()))?;
        let handles = (0..gates)
            .map(|subtask| {
                client.gate(GateIdentity {
                    pipeline: pipeline.clone(),
                    colour: Colour::Green,
                    job_id: "served".into(),
                    gate_uid: "gate".into(),
                    subtask_index: subtask,
                    parallelism: gates,
                    attempt: 0,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        control
            .wait_for(&pipeline, Duration::from_secs(60), |s| {
                s.green.connected == gates && s.green.acked == gates
            })
            .await
            .context("the served gates did not connect")?;
        Ok(Served {
            control,
            pipeline,
            gates,
            next: 0,
            _client: client,
            _gates: handles,
        })
    }

    /// Times `rounds` plan changes until every served gate acked each.
    async fn time(&mut self, rounds: u32) -> anyhow::Result<Latencies> {
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            let epoch = change(&mut self.control, &self.pipeline, &mut self.next).await?;
            let gates = self.gates;
            self.control
                .wait_for(&self.pipeline, Duration::from_secs(60), |s| {
                    s.plan.epoch.0 >= epoch && s.green.acked == gates
                })
                .await
                .context("the served gates stopped acknowledging")?;
            samples.push(started.elapsed());
        }
        Ok(Latencies::of(&samples))
    }
}

/// A fresh coordinator process (each attack gets its own, so that its
/// memory figures are the attack's) and its served gates.
struct Target {
    coordinator: CoordinatorProcess,
    address: std::net::SocketAddr,
    served: Served,
}

impl Target {
    async fn start(flags: &[String], tls: &ClientTls, gates: u32) -> anyhow::Result<Self> {
        let address = free_address()?;
        let coordinator = CoordinatorProcess::start_with(
            address,
            "memory",
            Duration::from_secs(60),
            flags,
            Some(tls.clone()),
        )
        .await?;
        let served = Served::start(&coordinator, tls, gates).await?;
        Ok(Target {
            coordinator,
            address,
            served,
        })
    }

    fn rss(&self) -> anyhow::Result<f64> {
        self.coordinator.rss_bytes().map(mib)
    }

    fn attack(
        &self,
        name: String,
        rss_before_mib: f64,
        served: Latencies,
        outcome: String,
    ) -> anyhow::Result<Attack> {
        Ok(Attack {
            name,
            rss_before_mib,
            rss_peak_mib: mib(self.coordinator.peak_rss_bytes()?),
            rss_after_mib: self.rss()?,
            served,
            outcome,
        })
    }
}

/// A schedule far ahead or its abort, in turn; the new epoch.
async fn change(
    control: &mut ControlClient,
    pipeline: &PipelineName,
    next: &mut i64,
) -> anyhow::Result<u64> {
    *next += 1;
    let status = if *next % 2 == 1 {
        control
            .schedule(
                pipeline,
                ScheduleRequest::at(Colour::Blue, Key((1 << 50) + *next)),
            )
            .await?
    } else {
        control.abort(pipeline).await?
    };
    Ok(status.plan.epoch.0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Raises this process's open-file limit (inherited by the coordinator it
/// starts) to hold `needed` connections on each side.
fn raise_open_files(needed: u64) -> anyhow::Result<u64> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if hard < needed {
        // Raising the hard limit needs privileges (CAP_SYS_RESOURCE).
        rlimit::setrlimit(rlimit::Resource::NOFILE, needed, needed).with_context(|| {
            format!("{needed} open files are needed and the hard limit is {hard}: raising it needs CAP_SYS_RESOURCE; lower --idle-connections")
        })?;
    }
    Ok(rlimit::increase_nofile_limit(needed)?)
}

impl ExhaustionArgs {
    /// Runs every attack and prints the figures.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let needed = self.idle_connections.max(self.handshakes) as u64 + 512;
        raise_open_files(needed)?;
        let pki = TestPki::generate()?;
        let (server, client) = (pki.server(), pki.client());
        let tls = ClientTls {
            ca: Some(pki.ca()),
            identity: Some((client.cert, client.key)),
            domain: None,
            token_file: None,
        };
        let flags: Vec<String> = vec![
            "--tls-cert".into(),
            server.cert.display().to_string(),
            "--tls-key".into(),
            server.key.display().to_string(),
            "--tls-client-ca".into(),
            pki.ca().display().to_string(),
            "--handshake-timeout".into(),
            humantime::format_duration(self.handshake_timeout).to_string(),
        ];
        let limit = Duration::from_secs(60);
        let fresh = || Target::start(&flags, &tls, self.gates);
        let cut_off = self.handshake_timeout + Duration::from_secs(10);
        let mut attacks = Vec::new();

        let mut target = fresh().await?;
        let baseline_rss = target.rss()?;
        let baseline = target.served.time(self.rounds).await?;
        drop(target);

        for (name, partial, count) in [
            ("idle TCP connections", false, self.idle_connections),
            ("unfinished TLS handshakes", true, self.handshakes),
        ] {
            let mut target = fresh().await?;
            let before = target.rss()?;
            let connections = if partial {
                unfinished_handshakes(target.address, count).await?
            } else {
                idle_connections(target.address, count).await?
            };
            let latencies = target.served.time(self.rounds).await?;
            let started = Instant::now();
            let closed = closed_by_server(connections, cut_off).await;
            attacks.push(target.attack(
                format!("{count} {name}"),
                before,
                latencies,
                format!(
                    "{closed} of {count} closed by the coordinator within {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
            )?);
        }

        let mut target = fresh().await?;
        let before = target.rss()?;
        let unread_pipeline = PipelineName::new("unread")?;
        let control = &mut target.served.control;
        control
            .create(&unread_pipeline, Colour::Green, None)
            .await?;
        let sessions = UnreadSessions::open(
            &target.coordinator.endpoint(),
            &tls,
            "unread",
            self.unread_sessions,
            100,
        )
        .await?;
        let mut next = 0;
        for _ in 0..100 {
            change(control, &unread_pipeline, &mut next).await?;
        }
        let latencies = target.served.time(self.rounds).await?;
        drop(sessions);
        target
            .served
            .control
            .wait_for(&unread_pipeline, limit, |s| s.green.connected == 0)
            .await
            .context("the unread sessions did not end")?;
        attacks.push(target.attack(
            format!(
                "{} gate sessions never read, 100 plan changes",
                self.unread_sessions
            ),
            before,
            latencies,
            "served; every unread session ended when its client left".into(),
        )?);

        let mut target = fresh().await?;
        let before = target.rss()?;
        let bytes = self.message_mib * 1_048_576;
        let endpoint = target.coordinator.endpoint();
        let (status, latencies) = tokio::join!(
            oversized_hello(&endpoint, &tls, bytes),
            target.served.time(self.rounds)
        );
        let status = status?;
        attacks.push(target.attack(
            format!("one {} MiB gate message", self.message_mib),
            before,
            latencies?,
            format!("{:?}: {}", status.code(), status.message()),
        )?);

        println!(
            "cutover bench exhaustion: one coordinator over mutual TLS, {} served gates, {} plan changes per row",
            self.gates, self.rounds
        );
        println!(
            "  baseline: {baseline_rss:.1} MiB; plan to every gate p50 {:.2} ms, p99 {:.2} ms",
            baseline.p50_ms, baseline.p99_ms
        );
        for a in &attacks {
            println!("  {}", a.name);
            println!(
                "    RSS {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; plan to every gate p50 {:.2} ms, p99 {:.2} ms; {}",
                a.rss_before_mib,
                a.rss_peak_mib,
                a.rss_after_mib,
                a.served.p50_ms,
                a.served.p99_ms,
                a.outcome
            );
        }
        if self.json {
            let figures = serde_json::json!({
                "baseline_rss_mib": baseline_rss,
                "baseline": baseline,
                "attacks": attacks,
            });
            println!("{figures}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
