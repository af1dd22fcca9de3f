//! The cutover coordinator: durable plans, gate sessions, control API.
//!
//! ```text
//!   ControlService ──► Coordinator::write ──► Store::compare_and_swap ──► install
//!                                                                         │
//!   GateService session ◄── watch<Published> (frames encoded once) ◄──────┘
//!        │ hello / ack / progress / horizon request
//!        └──► PipelineState ledger ──► driver task ──► Coordinator::write (horizon, DRAINED)
//!   Store::watch ──► install (documents written by others)
//! ```
//!
//! Decisions live in `cutover-core`; this crate is the IO around it.

pub mod admission;
pub mod auth;
pub mod broken;
pub mod config;
pub mod control;
pub mod error;
pub mod first_bytes;
pub mod fleet;
pub mod gate_server;
pub mod log_limit;
pub mod metrics;
pub mod published;
pub mod registry;
mod reload;
pub mod server;
mod session;
pub mod status_json;
pub mod status_metrics;
pub mod store;
pub mod tls;
pub mod web;

pub use config::CoordinatorConfig;
pub use error::CoordinatorError;
pub use metrics::Metrics;
pub use registry::{Coordinator, PipelineCell};
pub use server::{ServeError, serve, serve_tls};
