//! Library side of the `cutover` binary: the demo workload (also used by
//! the end-to-end tests) and `--store` parsing.

pub mod bench;
pub mod demo;
pub mod store_spec;
