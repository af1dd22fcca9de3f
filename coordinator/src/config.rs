//! Settings of a coordinator (the binary fills them from flags and
//! environment variables).

use std::time::Duration;

use cutover_core::HorizonPolicy;

/// Coordinator settings.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Horizon policy of pipelines this coordinator creates.
    pub horizon: HorizonPolicy,
    /// Largest message accepted from a client, in bytes.
    pub max_message_bytes: usize,
    /// Most gates one session may carry.
    pub max_gates_per_session: usize,
    /// Compare-and-swap attempts before a write gives up.
    pub cas_attempts: u32,
    /// Back-off between a failed automatic write and the next try.
    pub retry_backoff: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            horizon: HorizonPolicy::default(),
            max_message_bytes: 4 * 1024 * 1024,
            max_gates_per_session: 65_536,
            cas_attempts: 16,
            retry_backoff: Duration::from_millis(200),
        }
    }
}
