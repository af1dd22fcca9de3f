//! A `cutover serve` child process for the benchmarks that must look at a
//! coordinator from outside: its resident memory, or killing and restarting
//! it under its gates.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cutover_client::{ClientTls, ControlClient};
use tokio::process::{Child, Command};

/// A running coordinator process.
pub struct CoordinatorProcess {
    child: Child,
    listen: SocketAddr,
    tls: Option<ClientTls>,
}

/// Connects to a control service, retrying refused or reset connections
/// for up to 30 s.
pub async fn connect_control(endpoint: &str) -> anyhow::Result<ControlClient> {
    let started = Instant::now();
    loop {
        match ControlClient::connect(endpoint).await {
            Ok(control) => return Ok(control),
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                tracing::debug!(error = %e, "control connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).context("connecting to the control service"),
        }
    }
}

/// A free loopback address (bound, read, released).
pub fn free_address() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

impl CoordinatorProcess {
    /// Starts `cutover serve` on `listen` with `store` and waits until its
    /// control service answers (at most `limit`).
    pub async fn start(listen: SocketAddr, store: &str, limit: Duration) -> anyhow::Result<Self> {
        Self::start_with(listen, store, limit, &[], None).await
    }

    /// Like [`CoordinatorProcess::start`] with more flags of `cutover
    /// serve`, and over TLS when `tls` says how this side connects (the
    /// flags then name the server's files).
    pub async fn start_with(
        listen: SocketAddr,
        store: &str,
        limit: Duration,
        flags: &[String],
        tls: Option<ClientTls>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the cutover binary")?;
        let child = Command::new(exe)
            .args(["serve", "--listen", &listen.to_string()])
            .args(["--metrics-listen", "off", "--store", store])
            // The load generator opens every session from one address.
            .args(["--max-sessions-per-caller", "0", "--control-rate", "0"])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting cutover serve")?;
        let mut process = CoordinatorProcess { child, listen, tls };
        process.ready(limit).await?;
        Ok(process)
    }

    /// The gRPC endpoint.
    pub fn endpoint(&self) -> String {
        match self.tls {
            Some(_) => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }

    /// How this side connects: TLS settings (none in plaintext).
    pub fn client_tls(&self) -> ClientTls {
        self.tls.clone().unwrap_or_else(ClientTls::from_env)
    }

    /// A control client (retried for a while: under a storm of gate
    /// connections the listen queue may refuse a few).
    pub async fn control(&self) -> anyhow::Result<ControlClient> {
        match &self.tls {
            None => connect_control(&self.endpoint()).await,
            Some(tls) => Ok(ControlClient::connect_with(self.endpoint(), tls).await?),
        }
    }

    async fn ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("cutover serve exited with {status}");
            }
            if let Ok(mut control) =
                ControlClient::connect_with(self.endpoint(), &self.client_tls()).await
                && control.list().await.is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!("cutover serve did not answer within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Resident memory now, in bytes (Linux `/proc`).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS:").map(|kib| kib * 1024)
    }

    /// The most resident memory it ever had, in bytes.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:").map(|kib| kib * 1024)
    }

    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the coordinator has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("reading /proc/PID/status")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("no {field} line"))
    }

    /// Its address.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Kills it with SIGKILL (no goodbye to its sessions) and waits until it
    /// is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("killing the coordinator")?;
        self.child.wait().await?;
        Ok(())
    }
}
