//! `cutover bench`: load generators that measure the coordinator from
//! outside, the way users see it.

pub mod coordinator_process;
pub mod etcd_fanout;
pub mod exhaustion;
pub mod fanout;
pub mod fanout_client;
pub mod fleet;
pub mod hostile;
pub mod memory;
pub mod reconnect;
pub mod stats;
pub mod writes;

/// The `k`-th of `parts` near-equal shares of `total` (the first
/// `total % parts` shares get one more).
pub fn share(total: u32, parts: u32, k: u32) -> u32 {
    total / parts + u32::from(k < total % parts)
}
