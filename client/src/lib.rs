//! cutover's gate client for Rust: one coordinator session per process,
//! many gate handles, a per-record decision in nanoseconds.
//!
//! ```text
//!  subtask ──► Gate::decide(key) ──► arc_swap::Cache<Plan> (no lock, no alloc)
//!                 │ counters (plain fields) ── flush ──► PublishedGate atomics
//!                 └─ raise(Changed | Urgent) ──► Wake (one Notify)
//!  session task: SessionState::turn ── progress on a timer / at once on hold ──► coordinator
//!  session task ◄── snapshot | horizon grant ── apply() ──► PipelineSlot::install ──► ack
//! ```
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use cutover_client::{Client, ClientConfig};
//! use cutover_core::{Colour, Decision, GateIdentity, Key, PipelineName};
//!
//! let client = Client::connect(ClientConfig::new("http://127.0.0.1:7700"))?;
//! let mut gate = client.gate(GateIdentity {
//!     pipeline: PipelineName::new("orders")?,
//!     colour: Colour::Blue,
//!     job_id: "orders-blue-1".into(),
//!     gate_uid: "sink-gate".into(),
//!     subtask_index: 0,
//!     parallelism: 1,
//!     attempt: 0,
//! })?;
//! match gate.decide(Key(1_700_000_000_000)) {
//!     Decision::Emit => { /* pass the record to the sink */ }
//!     Decision::Drop => { /* the other colour emits it */ }
//!     Decision::Hold => { /* buffer it; gate.wait_until_decidable(key).await */ }
//! }
//! # Ok(()) }
//! ```

pub mod apply;
mod client;
mod config;
pub mod connection_report;
pub mod control;
mod error;
mod gate;
pub mod pool;
mod published;
mod session;
mod session_state;
mod shared;
mod slot;
pub mod tail;
pub mod tls;
mod wake;

pub use client::Client;
pub use config::ClientConfig;
pub use connection_report::ConnectionReport;
pub use control::{ControlClient, ControlError};
pub use cutover_core::{Colour, Decision, GateIdentity, Key, Mode, PipelineName};
pub use error::ClientError;
pub use gate::Gate;
pub use pool::ClientPool;
pub use tls::ClientTls;
