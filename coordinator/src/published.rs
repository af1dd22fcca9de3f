//! Plan frames encoded once per epoch and shared by every session of a
//! pipeline.
//!
//! Each installed document is encoded twice, up front: a full snapshot, and
//! a horizon grant for sessions that already hold the same segments. Sessions
//! read the latest [`Published`] from a `watch` channel, ask the core's
//! session rules which frame their client needs, and write its bytes as they
//! are.

use bytes::Bytes;
use cutover_core::{PipelineDoc, PlanVersion};
use cutover_proto::convert::plan_to;
use cutover_proto::v1;
use prost::Message;

/// The encoded frames of one epoch of one pipeline.
#[derive(Debug)]
pub struct Published {
    /// Which plan the frames carry.
    pub version: PlanVersion,
    /// `ServerMessage { snapshot }`, encoded.
    pub snapshot: Bytes,
    /// `ServerMessage { horizon_grant }`, encoded.
    pub grant: Bytes,
}

impl Published {
    /// Encodes the frames of `doc`.
    pub fn encode(doc: &PipelineDoc) -> Self {
        let snapshot = v1::ServerMessage {
            kind: Some(v1::server_message::Kind::Snapshot(v1::PlanSnapshot {
                pipeline: doc.name.to_string(),
                plan: Some(plan_to(&doc.plan)),
            })),
        };
        let grant = v1::ServerMessage {
            kind: Some(v1::server_message::Kind::HorizonGrant(v1::HorizonGrant {
                pipeline: doc.name.to_string(),
                epoch: doc.epoch().0,
                horizon: doc.horizon().0,
                segments_epoch: doc.segments_epoch.0,
                incarnation: doc.incarnation().0,
            })),
        };
        Published {
            version: PlanVersion::of(doc),
            snapshot: snapshot.encode_to_vec().into(),
            grant: grant.encode_to_vec().into(),
        }
    }
}
