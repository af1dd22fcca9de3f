//! Hosts on one machine: network namespaces joined by veth pairs to a bridge
//! in a hub namespace, each standing for a cluster or the store's host, and
//! one more pair giving the test process itself an address on that network.
//! Processes start inside a host with `ip netns exec`; a host's link to the
//! others is cut and restored with `ip link set ... down/up`. Everything is
//! removed when the [`Network`] is dropped. Without root or `ip`, creating a
//! network fails with the reason: a test never skips silently.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};

/// Networks made by this process so far (each gets its own subnet).
static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// A network of hosts.
pub struct Network {
    prefix: String,
    hub: String,
    subnet: [u8; 3],
    hosts: Vec<String>,
    root_link: String,
}

/// One host: a network namespace with one link to the hub.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its namespace.
    pub namespace: String,
    /// Its address on the network.
    pub address: Ipv4Addr,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running `ip` (Debian's iproute2)")?;
    if !output.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

impl Network {
    /// A hub with nothing on it but the test process's own link.
    pub fn new() -> anyhow::Result<Self> {
        let output = Command::new("id")
            .arg("-u")
            .output()
            .context("running `id -u`")?;
        if String::from_utf8_lossy(&output.stdout).trim() != "0" {
            bail!(
                "tests across hosts need root (network namespaces and veth pairs); run them as root, as CI does"
            );
        }
        let pid = std::process::id();
        let n = NETWORKS.fetch_add(1, Ordering::Relaxed);
        // A /24 of 100.64.0.0/10 per process and network (shared address
        // space: no real network of the machine uses it).
        let id = pid.wrapping_mul(8).wrapping_add(n) & 0x3fff;
        let subnet = [100, 64 + (id >> 8) as u8, id as u8];
        let prefix = format!("co{pid}n{n}");
        let hub = format!("{prefix}-hub");
        let root_link = format!("co{:x}", (pid << 4) | (n & 0xf));
        ip(&["netns", "add", &hub])?;
        let network = Network {
            prefix,
            hub,
            subnet,
            hosts: Vec::new(),
            root_link,
        };
        network.in_hub(&["link", "add", "br0", "type", "bridge"])?;
        network.in_hub(&["link", "set", "br0", "up"])?;
        network.in_hub(&["link", "set", "lo", "up"])?;
        // The test process's own link: its end in this namespace.
        let root = network.root_link.clone();
        ip(&[
            "link",
            "add",
            &root,
            "type",
            "veth",
            "peer",
            "name",
            "root",
            "netns",
            &network.hub,
        ])?;
        network.in_hub(&["link", "set", "root", "master", "br0", "up"])?;
        let address = format!("{}/24", network.address(254));
        ip(&["addr", "add", &address, "dev", &root])?;
        ip(&["link", "set", &root, "up"])?;
        Ok(network)
    }

    fn in_hub(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["-n", self.hub.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    fn address(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.subnet[0], self.subnet[1], self.subnet[2], host)
    }

    /// Adds host `name` (its namespace, loopback up, one link to the hub).
    pub fn host(&mut self, name: &str) -> anyhow::Result<Host> {
        let index = self.hosts.len() + 1;
        anyhow::ensure!(index < 250, "too many hosts");
        let namespace = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &namespace])?;
        self.hosts.push(namespace.clone());
        let hub_end = format!("h{index}");
        ip(&[
            "link", "add", "eth0", "netns", &namespace, "type", "veth", "peer", "name", &hub_end,
            "netns", &self.hub,
        ])?;
        self.in_hub(&["link", "set", &hub_end, "master", "br0", "up"])?;
        let address = self.address(index as u8);
        let cidr = format!("{address}/24");
        ip(&["-n", &namespace, "addr", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", &namespace, "link", "set", "eth0", "up"])?;
        ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        Ok(Host { namespace, address })
    }

    /// Cuts `host`'s link to every other host (and to the test process).
    pub fn cut(&self, host: &Host) -> anyhow::Result<()> {
        ip(&["-n", &host.namespace, "link", "set", "eth0", "down"])
    }

    /// Restores `host`'s link.
    pub fn restore(&self, host: &Host) -> anyhow::Result<()> {
        ip(&["-n", &host.namespace, "link", "set", "eth0", "up"])
    }
}

impl Host {
    /// A command that runs `program` inside this host.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace])
            .arg(program);
        command
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Processes were stopped by their owners (dropped before this);
        // removing a namespace removes its links, and the hub's removal
        // takes the test process's link with it.
        for namespace in self.hosts.iter().chain(std::iter::once(&self.hub)) {
            let _ = ip(&["netns", "del", namespace]);
        }
        let _ = ip(&["link", "del", &self.root_link]);
    }
}
