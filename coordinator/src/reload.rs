//! Files re-read while serving (TLS certificates, the policy): one task
//! per file set calls its reload every interval and logs what happened.

use std::time::Duration;

use tracing::{info, warn};

/// Calls `reload` every `interval` until the returned task is aborted:
/// `Ok(true)` (new contents installed) is logged at info, an error at warn
/// (the previous contents stay in use).
pub fn every<E: std::fmt::Display + Send + 'static>(
    interval: Duration,
    what: &'static str,
    reload: impl Fn() -> Result<bool, E> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match reload() {
                Ok(true) => info!(what, "reloaded"),
                Ok(false) => {}
                Err(error) => {
                    warn!(what, %error, "not reloaded; the previous contents stay in use")
                }
            }
        }
    })
}
