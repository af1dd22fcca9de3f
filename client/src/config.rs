//! Client settings, builder style.

use std::time::Duration;

use crate::tls::ClientTls;

/// Settings of a [`crate::Client`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) endpoint: String,
    pub(crate) client_name: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) progress_interval: Duration,
    pub(crate) keepalive: Duration,
    pub(crate) tls: ClientTls,
}

impl ClientConfig {
    /// Settings for the coordinator at `endpoint` (`http://host:port`), or
    /// for several coordinators serving the same pipelines, separated by
    /// commas (`http://a:7700,http://b:7700`): the client keeps one session
    /// to one of them and moves to the next only when its coordinator
    /// cannot be reached or stops answering.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            client_name: default_client_name(),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(5),
            progress_interval: Duration::from_millis(200),
            keepalive: Duration::from_secs(10),
            tls: ClientTls::from_env(),
        }
    }

    /// TLS for `https://` endpoints; by default from the environment
    /// ([`ClientTls::from_env`]).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    /// The coordinators to use, in order.
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoint
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// How often an idle connection is checked; a coordinator that does not
    /// answer a check within as long again is left for the next one.
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }

    /// Name of this process in the coordinator's logs.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Time allowed for one connection attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Back-off between reconnection attempts: starts at `min`, doubles up
    /// to `max`, each wait jittered between half and all of it.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// Shortest time between two progress reports: a change (watermark,
    /// counters, idle, finished) goes out at most this long after it
    /// happened; a session whose gates did not change sends nothing. It is
    /// also reported at once when a gate holds a record or nears the horizon.
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }
}

fn default_client_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{host}/{}", std::process::id())
}
