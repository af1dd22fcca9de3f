//! Library side of the `cutover` binary: the demo workload (also used by
//! the end-to-end tests), `--store` parsing, the control commands and the
//! benchmarks.

pub mod bench;
pub mod control;
pub mod demo;
pub mod flags;
pub mod import;
pub mod kubectl;
pub mod pki;
pub mod status_watch;
pub mod store_spec;
pub mod tls_args;
