//! Plan frames encoded once per epoch and shared by every session of a
//! pipeline.
//!
//! Each installed document is encoded twice, up front: a full snapshot, and
//! a horizon grant for sessions that already hold the same segments. Sessions
//! read the latest [`Published`] from a `watch` channel and write the bytes
//! as they are.

use bytes::Bytes;
use cutover_core::{Epoch, Incarnation, PipelineDoc};
use cutover_proto::convert::plan_to;
use cutover_proto::v1;
use prost::Message;

/// What a session's client holds of a pipeline, as far as the coordinator
/// knows: incarnation, epoch, and the epoch its segments date from.
pub type Held = Option<(Incarnation, Epoch, Epoch)>;

/// The encoded frames of one epoch of one pipeline.
#[derive(Debug)]
pub struct Published {
    /// Incarnation of the pipeline.
    pub incarnation: Incarnation,
    /// Epoch of the plan.
    pub epoch: Epoch,
    /// Epoch at which the segments last changed.
    pub segments_epoch: Epoch,
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
            incarnation: doc.incarnation(),
            epoch: doc.epoch(),
            segments_epoch: doc.segments_epoch,
            snapshot: snapshot.encode_to_vec().into(),
            grant: grant.encode_to_vec().into(),
        }
    }

    /// What a session holds once it was sent this epoch.
    pub fn held(&self) -> Held {
        Some((self.incarnation, self.epoch, self.segments_epoch))
    }

    /// The frame for a session that holds `held`, or `None` if it is
    /// current.
    pub fn frame_for(&self, held: Held) -> Option<&Bytes> {
        match held {
            Some((incarnation, _, _)) if incarnation != self.incarnation => Some(&self.snapshot),
            Some((_, epoch, _)) if epoch >= self.epoch => None,
            Some((_, _, segments)) if segments == self.segments_epoch => Some(&self.grant),
            _ => Some(&self.snapshot),
        }
    }
}
