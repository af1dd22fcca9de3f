//! What a client can say about its connection to the coordinators, for
//! people reading a job's log or an error: whether it ever connected, since
//! when it is (dis)connected, how many attempts failed and the last reason.
//! Also the check of coordinator addresses, so that a mistyped endpoint is
//! refused when the gate is made instead of never connecting.

use std::fmt;
use std::time::{Duration, Instant};

/// Why a coordinator address is unusable, or `Ok` for a usable one: it
/// must be `http://` or `https://`, name a host, and carry no path.
pub fn check_address(address: &str) -> Result<(), String> {
    let rest = if let Some(rest) = address.strip_prefix("http://") {
        rest
    } else if let Some(rest) = address.strip_prefix("https://") {
        rest
    } else {
        let hint = if address.contains("://") {
            "only http:// and https:// are spoken".to_string()
        } else {
            format!("it needs a scheme: write http://{address} (or https:// for TLS)")
        };
        return Err(hint);
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err("it names no host".into());
    }
    if authority.contains('/') || authority.contains('?') {
        return Err("it must be host:port only, without a path".into());
    }
    if authority.contains(char::is_whitespace) {
        return Err("it contains white space".into());
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{port:?} is not a port"));
    }
    Ok(())
}

/// Why a list of coordinator addresses (separated by commas) is unusable,
/// naming the address; `Ok` if every one is usable.
pub fn check_endpoints(list: &str) -> Result<(), String> {
    let addresses: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if addresses.is_empty() {
        return Err("no coordinator address".into());
    }
    for address in addresses {
        check_address(address)
            .map_err(|reason| format!("invalid coordinator endpoint {address:?}: {reason}"))?;
    }
    Ok(())
}

/// The connection history of one client.
#[derive(Clone, Debug)]
pub struct ConnectionReport {
    /// The coordinators, as configured.
    pub endpoints: String,
    /// Whether a session is open now.
    pub connected: bool,
    /// Whether a session was ever open.
    pub ever_connected: bool,
    /// The coordinator of the open session, or the last one tried.
    pub last_endpoint: Option<String>,
    /// Attempts that failed since the last session opened (or since the
    /// start).
    pub failed_attempts: u64,
    /// Why the last attempt failed or the last session ended.
    pub last_error: Option<String>,
    /// How long the present state (connected, disconnected, never
    /// connected) has lasted.
    pub state_for: Duration,
}

impl fmt::Display for ConnectionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole seconds, or tenths below ten seconds.
        let shown = if self.state_for < Duration::from_secs(10) {
            Duration::from_millis(self.state_for.as_millis() as u64 / 100 * 100)
        } else {
            Duration::from_secs(self.state_for.as_secs())
        };
        let since = humantime::format_duration(shown);
        let at = self.last_endpoint.as_deref().unwrap_or(&self.endpoints);
        if self.connected {
            return write!(f, "connected to {at} for {since}");
        }
        if self.ever_connected {
            write!(f, "disconnected from {at} for {since}")?;
        } else {
            write!(f, "never connected to {} in {since}", self.endpoints)?;
        }
        write!(f, " ({} failed attempts", self.failed_attempts)?;
        if let Some(error) = &self.last_error {
            write!(f, "; last error: {error}")?;
        }
        f.write_str(")")
    }
}

/// The record behind [`ConnectionReport`], updated by the session task.
#[derive(Debug)]
pub(crate) struct ConnectionLog {
    endpoints: String,
    connected: bool,
    ever_connected: bool,
    last_endpoint: Option<String>,
    failed_attempts: u64,
    last_error: Option<String>,
    state_since: Instant,
    last_logged: Option<Instant>,
}

/// At most one log line per this interval while attempts keep failing.
const LOG_INTERVAL: Duration = Duration::from_secs(30);

impl ConnectionLog {
    pub(crate) fn new(endpoints: String, now: Instant) -> Self {
        ConnectionLog {
            endpoints,
            connected: false,
            ever_connected: false,
            last_endpoint: None,
            failed_attempts: 0,
            last_error: None,
            state_since: now,
            last_logged: None,
        }
    }

    /// A session to `endpoint` opened.
    pub(crate) fn opened(&mut self, endpoint: &str, now: Instant) {
        self.connected = true;
        self.ever_connected = true;
        self.last_endpoint = Some(endpoint.to_string());
        self.failed_attempts = 0;
        self.state_since = now;
        self.last_logged = None;
    }

    /// An attempt on `endpoint` failed, or its session ended, for `error`.
    /// Returns whether this failure should be logged (the first one, then
    /// one per [`LOG_INTERVAL`]).
    pub(crate) fn failed(&mut self, endpoint: &str, error: String, now: Instant) -> bool {
        if self.connected {
            self.connected = false;
            self.state_since = now;
        }
        self.last_endpoint = Some(endpoint.to_string());
        self.failed_attempts += 1;
        self.last_error = Some(error);
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= LOG_INTERVAL);
        if due {
            self.last_logged = Some(now);
        }
        due
    }

    pub(crate) fn report(&self, now: Instant) -> ConnectionReport {
        ConnectionReport {
            endpoints: self.endpoints.clone(),
            connected: self.connected,
            ever_connected: self.ever_connected,
            last_endpoint: self.last_endpoint.clone(),
            failed_attempts: self.failed_attempts,
            last_error: self.last_error.clone(),
            state_for: now.saturating_duration_since(self.state_since),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_with_the_fix_in_the_reason() {
        for good in [
            "http://cutover:7700",
            "https://cutover.cutover-system.svc:7700",
            "http://127.0.0.1:7700/",
            "http://[::1]:7700",
            "http://cutover",
        ] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        let table = [
            ("cutover:7700", "write http://cutover:7700"),
            ("127.0.0.1:7700", "write http://127.0.0.1:7700"),
            ("grpc://cutover:7700", "only http:// and https://"),
            ("http://", "names no host"),
            ("http://cutover:7700/gate", "without a path"),
            ("http://cutover:port", "\"port\" is not a port"),
            ("http://cutover: 7700", "white space"),
        ];
        for (bad, reason) in table {
            let error = check_address(bad).expect_err(bad);
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }

    #[test]
    fn the_report_says_whether_it_ever_connected_and_why_not() {
        let start = Instant::now();
        let mut log = ConnectionLog::new("http://a:7700,http://b:7700".into(), start);
        assert!(log.failed("http://a:7700", "connection refused".into(), start));
        let later = start + Duration::from_secs(5);
        assert!(!log.failed("http://b:7700", "timed out".into(), later));
        let report = log.report(start + Duration::from_secs(12));
        assert!(!report.ever_connected && !report.connected);
        assert_eq!(
            report.to_string(),
            "never connected to http://a:7700,http://b:7700 in 12s (2 failed attempts; last error: timed out)"
        );
        assert!(log.failed(
            "http://a:7700",
            "refused".into(),
            start + LOG_INTERVAL + Duration::from_secs(1)
        ));

        let opened = start + Duration::from_secs(60);
        log.opened("http://b:7700", opened);
        let report = log.report(opened + Duration::from_millis(3_456));
        assert_eq!(
            report.to_string(),
            "connected to http://b:7700 for 3s 400ms"
        );
        let lost = opened + Duration::from_secs(10);
        assert!(log.failed("http://b:7700", "session ended: UNAVAILABLE".into(), lost));
        let report = log.report(lost + Duration::from_secs(61));
        assert_eq!(
            report.to_string(),
            "disconnected from http://b:7700 for 1m 1s (1 failed attempts; last error: session ended: UNAVAILABLE)"
        );
    }
}
