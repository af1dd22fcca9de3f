//! A real etcd for tests: Debian's `etcd` binary on free loopback ports (or
//! inside a host of a test network) with a temporary data directory, killed by PID when dropped. If etcd cannot
//! start, tests fail loudly: they are never skipped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::netns::Host;
use crate::pki::TestPki;

/// A running etcd.
pub struct EtcdServer {
    child: Child,
    /// Client URL (`http://127.0.0.1:PORT`, `https://` with TLS).
    pub endpoint: String,
    tls: Option<etcd_client::TlsOptions>,
    _data: tempfile::TempDir,
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The etcd binary: `$CUTOVER_ETCD_BIN`, else `etcd` on the PATH.
fn binary() -> String {
    std::env::var("CUTOVER_ETCD_BIN").unwrap_or_else(|_| "etcd".into())
}

impl EtcdServer {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None, free_port()?).await
    }

    /// Starts etcd inside `host` (a host of a [`crate::netns::Network`]),
    /// its client URL on `host`'s address, and waits until it answers.
    pub async fn start_in(host: &Host) -> anyhow::Result<Self> {
        Self::start_at(None, Some(host), 2379).await
    }

    /// Starts etcd with its client URL on `port` (a port the test reserved
    /// and handed to a client before etcd existed).
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        Self::start_with(None, port).await
    }

    /// Starts etcd serving TLS with `pki`'s server certificate and requiring
    /// client certificates signed by its CA.
    pub async fn start_tls(pki: &TestPki) -> anyhow::Result<Self> {
        Self::start_with(Some(pki), free_port()?).await
    }

    async fn start_with(pki: Option<&TestPki>, client: u16) -> anyhow::Result<Self> {
        Self::start_at(pki, None, client).await
    }

    async fn start_at(
        pki: Option<&TestPki>,
        host: Option<&Host>,
        client: u16,
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let scheme = if pki.is_some() { "https" } else { "http" };
        let (address, peer, mut command) = match host {
            Some(host) => (host.address.to_string(), 2380, host.command(binary())),
            None => (
                "127.0.0.1".to_string(),
                free_port()?,
                Command::new(binary()),
            ),
        };
        let endpoint = format!("{scheme}://{address}:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut tls = None;
        if let Some(pki) = pki {
            let (server, client) = (pki.server(), pki.client());
            command
                .arg("--cert-file")
                .arg(&server.cert)
                .arg("--key-file")
                .arg(&server.key)
                .arg("--trusted-ca-file")
                .arg(pki.ca())
                .arg("--client-cert-auth");
            tls = Some(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(std::fs::read(pki.ca())?))
                    .identity(etcd_client::Identity::from_pem(
                        std::fs::read(&client.cert)?,
                        std::fs::read(&client.key)?,
                    )),
            );
        }
        let child = command
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
            tls,
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
            let options = self
                .connect_options()
                .with_connect_timeout(Duration::from_millis(500));
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

    /// Options reaching this server (its CA and a client certificate when
    /// it serves TLS).
    pub fn connect_options(&self) -> etcd_client::ConnectOptions {
        let options = etcd_client::ConnectOptions::new();
        match &self.tls {
            Some(tls) => options.with_tls(tls.clone()),
            None => options,
        }
    }

    /// Compacts etcd's history up to its current revision.
    pub async fn compact(&self) -> anyhow::Result<i64> {
        let mut client =
            etcd_client::Client::connect([&self.endpoint], Some(self.connect_options())).await?;
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
