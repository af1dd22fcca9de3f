//! `cutover serve` as a child process: started on a chosen port (on
//! loopback, or inside a host of a [`crate::netns::Network`]), killed with
//! SIGKILL, stopped and continued with signals, restarted on the same port
//! and store.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::netns::Host;

/// The `cutover` binary built with the tests (`target/<profile>/cutover`).
pub fn cutover_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> -> target/<profile>/cutover
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("test binary has no profile folder")?;
    let binary = profile_dir.join("cutover");
    if !binary.exists() {
        bail!(
            "{} is missing: build the workspace's tests (cargo nextest run --workspace)",
            binary.display()
        );
    }
    Ok(binary)
}

/// `bash <script>` for a script that builds with cargo itself: the
/// per-package variables the test harness sets (CARGO_MANIFEST_DIR,
/// CARGO_PKG_*, ...) would make that build differ from `cargo build` in a
/// shell and rebuild everything, so only the user's cargo settings are kept.
pub fn script_command(script: &str) -> std::process::Command {
    let mut command = std::process::Command::new("bash");
    command.arg(script);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let kept = matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR");
        if (key.starts_with("CARGO_") && !kept) || key.starts_with("NEXTEST") {
            command.env_remove(&key);
        }
    }
    command
}

/// Runs `command`; its stdout's last line as JSON, or an error with both
/// outputs when it fails.
pub fn last_json_line(
    command: &mut std::process::Command,
    what: &str,
) -> anyhow::Result<serde_json::Value> {
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stdout.lines().last().unwrap_or_default();
    println!("{last}");
    anyhow::ensure!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    Ok(serde_json::from_str(last)?)
}

/// A free loopback address.
pub fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Flags of a fleet for tests: a one-second horizon window, renewals every
/// 200 ms, a silent coordinator judged dead after two seconds.
pub const QUICK_FLEET: [&str; 6] = [
    "--horizon-window",
    "1s",
    "--fleet-renew",
    "200ms",
    "--fleet-ttl",
    "2s",
];

/// A coordinator process.
pub struct CoordinatorProcess {
    child: Option<Child>,
    /// Its gRPC address.
    pub address: SocketAddr,
    args: Vec<String>,
    host: Option<Host>,
}

impl CoordinatorProcess {
    /// Starts `cutover serve --store <store>` on a free port with `extra`
    /// flags and waits until it serves.
    pub async fn start(store: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let mut process = Self::launch(store, extra)?;
        process.wait_health(ServingStatus::Serving).await?;
        Ok(process)
    }

    /// Starts it like [`CoordinatorProcess::start`] but returns as soon as
    /// its health answers NOT_SERVING (a coordinator waiting for its store).
    pub async fn start_not_serving(store: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let mut process = Self::launch(store, extra)?;
        process.wait_health(ServingStatus::NotServing).await?;
        Ok(process)
    }

    /// Waits until its health answers SERVING.
    pub async fn wait_serving(&mut self) -> anyhow::Result<()> {
        self.wait_health(ServingStatus::Serving).await
    }

    /// Starts `cutover serve --store <store>` inside `host`, listening on
    /// `port` of every address there (its own host's processes dial
    /// loopback, the others `host`'s address), and waits until it serves.
    pub async fn start_in(
        host: &Host,
        port: u16,
        store: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let listen = SocketAddr::from(([0, 0, 0, 0], port));
        let address = SocketAddr::from((host.address, port));
        let mut process = Self::launch_at(Some(host.clone()), listen, address, store, extra)?;
        process.wait_health(ServingStatus::Serving).await?;
        Ok(process)
    }

    fn launch(store: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let address = free_address()?;
        Self::launch_at(None, address, address, store, extra)
    }

    fn launch_at(
        host: Option<Host>,
        listen: SocketAddr,
        address: SocketAddr,
        store: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            listen.to_string(),
            // A test network's own addresses: plaintext there is deliberate.
            "--insecure-plaintext".into(),
            "--store".into(),
            store.into(),
        ];
        // No metrics port unless the test asks for one.
        if !extra.contains(&"--metrics-listen") {
            args.extend(["--metrics-listen".into(), "off".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut process = CoordinatorProcess {
            child: None,
            address,
            args,
            host,
        };
        process.launch_child()?;
        Ok(process)
    }

    fn launch_child(&mut self) -> anyhow::Result<()> {
        let binary = cutover_binary()?;
        let mut command = match &self.host {
            Some(host) => host.command(binary),
            None => Command::new(binary),
        };
        let child = command
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("CUTOVER_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting cutover serve")?;
        self.child = Some(child);
        Ok(())
    }

    /// `http://address`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    async fn wait_health(&mut self, expected: ServingStatus) -> anyhow::Result<()> {
        // Another process offers no event to await: probe its health,
        // bounded in time.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("cutover serve exited during start-up: {status}");
            }
            if let Ok(channel) = tonic::transport::Channel::from_shared(self.endpoint())?
                .connect()
                .await
            {
                let mut health = HealthClient::new(channel);
                if let Ok(response) = health
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    && response.get_ref().status == expected as i32
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "cutover serve at {} did not report {expected:?} within 20 s",
                    self.address
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// The process id (`ip netns exec` runs the coordinator in its own
    /// place), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) with `kill`.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the coordinator is not running")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// Starts again on the same port and store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9()?;
        self.launch_child()?;
        self.wait_serving().await
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
