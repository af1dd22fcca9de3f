//! Generated protobuf and gRPC types of cutover, package `cutover.v1`.
//!
//! The `.proto` files under `proto/cutover/v1/` are the source of truth; they
//! are compiled at build time by protox (no system `protoc`). Domain types
//! live in `cutover-core`; [`convert`] is the one place where wire messages
//! become domain values and back, used by the coordinator, the client and
//! every tool.

pub mod convert;

/// Package `cutover.v1`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("cutover.v1");
}

/// Encoded `FileDescriptorSet` of every cutover proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cutover_descriptor.bin"));
