//! A real etcd for tests: Debian's `etcd` binary on free loopback ports with
//! a temporary data directory, killed by PID when dropped. If etcd cannot
//! start, tests fail loudly: they are never skipped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running etcd.
pub struct EtcdServer {
    child: Child,
    /// Client URL (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    _data: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The etcd binary: `$CUTOVER_ETCD_BIN`, else `etcd` on the PATH.
fn binary() -> String {
    std::env::var("CUTOVER_ETCD_BIN").unwrap_or_else(|_| "etcd".into())
}

impl EtcdServer {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let (client, peer) = (free_port()?, free_port()?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(binary())
            .args(["--name", "test", "--data-dir"])
            .arg(data.path())
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (install Debian's etcd-server: .ci/run does)",
                    binary()
                )
            })?;
        let mut server = EtcdServer {
            child,
            endpoint,
            _data: data,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        // etcd offers no readiness event to await from outside: probe it,
        // bounded in time.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("etcd exited during start-up: {status}");
            }
            let options =
                etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_millis(500));
            if let Ok(mut client) =
                etcd_client::Client::connect([&self.endpoint], Some(options)).await
                && client.get("probe", None).await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("etcd at {} did not answer within 20 s", self.endpoint);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Compacts etcd's history up to its current revision.
    pub async fn compact(&self) -> anyhow::Result<i64> {
        let mut client = etcd_client::Client::connect([&self.endpoint], None).await?;
        let revision = client
            .get("probe", None)
            .await?
            .header()
            .map_or(0, |h| h.revision());
        client
            .compact(
                revision,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await?;
        Ok(revision)
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
