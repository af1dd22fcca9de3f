//! A fleet of `cutover bench fanout-client` processes holding the gates of
//! one pipeline, and what they report: per process, the latest epoch every
//! one of its gates holds and when (Unix nanoseconds).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cutover_client::ControlClient;
use cutover_core::PipelineName;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::share;

/// Sessions and gates of one client process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// Sessions (gRPC streams) it opens.
    pub sessions: u32,
    /// Gates it spreads over them.
    pub gates: u32,
}

/// `gates` gates over `sessions` sessions over `processes` processes, as
/// evenly as possible.
pub fn layout(gates: u32, sessions: u32, processes: u32) -> Vec<Share> {
    let mut first_session = 0;
    (0..processes)
        .map(|k| {
            let own = share(sessions, processes, k);
            let gates = (first_session..first_session + own)
                .map(|s| share(gates, sessions, s))
                .sum();
            first_session += own;
            Share {
                sessions: own,
                gates,
            }
        })
        .collect()
}

/// Running client processes and their reports.
pub struct Fleet {
    /// The processes, in layout order (killed when dropped).
    pub processes: Vec<Child>,
    /// Each process's layout share.
    pub shares: Vec<Share>,
    /// Per process: (epoch every gate holds, Unix nanoseconds it was seen).
    pub reports: watch::Receiver<Vec<(u64, u128)>>,
}

impl Fleet {
    /// Starts one process per share, all GREEN gates of `pipeline`.
    pub fn spawn(endpoint: &str, pipeline: &str, shares: &[Share]) -> anyhow::Result<Fleet> {
        let parallelism: u32 = shares.iter().map(|s| s.gates).sum();
        let (reports_tx, reports) = watch::channel(vec![(0u64, 0u128); shares.len()]);
        let reports_tx = Arc::new(reports_tx);
        let mut processes = Vec::with_capacity(shares.len());
        let mut first_subtask = 0;
        for (index, share) in shares.iter().enumerate() {
            processes.push(spawn_client(
                endpoint,
                pipeline,
                *share,
                first_subtask,
                parallelism,
                index,
                reports_tx.clone(),
            )?);
            first_subtask += share.gates;
        }
        Ok(Fleet {
            processes,
            shares: shares.to_vec(),
            reports,
        })
    }

    /// Gates over all processes.
    pub fn gates(&self) -> u32 {
        self.shares.iter().map(|s| s.gates).sum()
    }

    /// Process ids, in layout order.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().filter_map(Child::id).collect()
    }

    /// Waits until every process in `live` reports `epoch` or later;
    /// returns the latest of their stamps.
    pub async fn delivered(&self, epoch: u64, live: &[usize]) -> anyhow::Result<u128> {
        let mut reports = self.reports.clone();
        let all = reports
            .wait_for(|r| live.iter().all(|&i| r[i].0 >= epoch))
            .await
            .context("a client process ended")?;
        Ok(live.iter().map(|&i| all[i].1).max().unwrap_or(0))
    }

    /// Stops every process.
    pub fn kill(&mut self) {
        for process in &mut self.processes {
            let _ = process.start_kill();
        }
    }
}

fn spawn_client(
    endpoint: &str,
    pipeline: &str,
    share: Share,
    first_subtask: u32,
    parallelism: u32,
    index: usize,
    reports: Arc<watch::Sender<Vec<(u64, u128)>>>,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the cutover binary")?;
    let mut child = Command::new(exe)
        .args(["bench", "fanout-client", "--endpoint", endpoint])
        .args(["--pipeline", pipeline])
        .args(["--sessions", &share.sessions.to_string()])
        .args(["--gates", &share.gates.to_string()])
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

/// Waits until the coordinator sees `gates` GREEN gates connected and
/// acked at its current epoch.
pub async fn wait_for_all_gates(
    control: &mut ControlClient,
    pipeline: &PipelineName,
    gates: u32,
    limit: Duration,
) -> anyhow::Result<()> {
    // The pipeline exists once the first gate arrived: poll for that only.
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match control.get(pipeline).await {
            Ok(_) => break,
            Err(e) if e.code() == Some(tonic::Code::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no gate arrived within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    control
        .wait_for(pipeline, left, |s| {
            s.green.connected == gates && s.green.acked == gates
        })
        .await
        .with_context(|| format!("not every gate connected within {limit:?}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_spreads_gates_and_sessions_evenly() {
        let shares = layout(10, 4, 3);
        assert_eq!(
            shares,
            vec![
                Share {
                    sessions: 2,
                    gates: 6
                },
                Share {
                    sessions: 1,
                    gates: 2
                },
                Share {
                    sessions: 1,
                    gates: 2
                },
            ]
        );
        let shares = layout(10_000, 10_000, 8);
        assert_eq!(shares.iter().map(|s| s.gates).sum::<u32>(), 10_000);
        assert!(shares.iter().all(|s| s.gates == s.sessions));
    }
}
