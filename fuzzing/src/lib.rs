//! What cutover decodes and validates itself, as fuzz targets: plain
//! functions from bytes that panic only when an invariant breaks.
//!
//! - [`frames::client_message`]: a gate's message as the coordinator's
//!   frame codec decodes it, then every part converted to domain types;
//! - [`frames::server_message`]: a coordinator's frame as a client decodes
//!   and applies it to the plan it holds;
//! - [`stored::document`]: a pipeline document as each store reads it
//!   (file envelope, etcd value, ConfigMap data) and a fleet serving report,
//!   then installed into a coordinator's core;
//! - [`core_sequence::run`]: arbitrary sequences of session and control
//!   messages driven into one pipeline's core, checking the fence after
//!   each document it makes.
//!
//! `fuzz/` holds the cargo-fuzz targets (nightly) that call these;
//! `tests/corpus.rs` runs them on the stable toolchain over the committed
//! corpus and over seeded random inputs.

pub mod bytes;
pub mod core_sequence;
pub mod frames;
pub mod stored;

/// A fuzz target: takes any bytes, panics only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its corpus folder and its cargo-fuzz
/// target).
pub const TARGETS: [(&str, Target); 4] = [
    ("client_message", frames::client_message),
    ("server_message", frames::server_message),
    ("stored_document", stored::document),
    ("core_sequence", core_sequence::run),
];
