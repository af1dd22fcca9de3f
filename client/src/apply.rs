//! How a client applies a frame from the coordinator to the plan it holds
//! (pure; the session task and the simulation both use it).
//!
//! A plan is replaced only by a newer epoch. A horizon grant names the epoch
//! at which the segments last changed; the client applies it only if the plan
//! it holds has those segments (its epoch is at or after that one), and
//! otherwise asks for a snapshot by reconnecting.

use std::sync::Arc;

use cutover_core::{Epoch, Key, Plan};

/// A frame from the coordinator, in domain terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole plan.
    Snapshot(Plan),
    /// Only the horizon moved.
    Grant {
        /// New epoch.
        epoch: Epoch,
        /// New horizon.
        horizon: Key,
        /// Epoch at which the segments last changed.
        segments_epoch: Epoch,
    },
}

/// What applying a frame did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A newer plan to install (then acknowledge its epoch).
    Install(Arc<Plan>),
    /// Not newer than what is held: acknowledge the held epoch, change nothing.
    Stale,
    /// A grant for segments the client does not hold: resynchronise.
    NeedSnapshot,
}

/// Applies `frame` to the `held` plan.
pub fn apply(held: Option<&Plan>, frame: Frame) -> Applied {
    match frame {
        Frame::Snapshot(plan) => match held {
            Some(held) if held.epoch >= plan.epoch => Applied::Stale,
            _ => Applied::Install(Arc::new(plan)),
        },
        Frame::Grant {
            epoch,
            horizon,
            segments_epoch,
        } => match held {
            Some(held) if held.epoch >= epoch => Applied::Stale,
            Some(held) if held.epoch >= segments_epoch && horizon >= held.horizon => {
                let mut plan = held.clone();
                plan.epoch = epoch;
                plan.horizon = horizon;
                Applied::Install(Arc::new(plan))
            }
            _ => Applied::NeedSnapshot,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::Colour;

    fn plan(epoch: u64, horizon: i64) -> Plan {
        let mut plan = Plan::new(Colour::Green);
        plan.epoch = Epoch(epoch);
        plan.horizon = Key(horizon);
        plan
    }

    fn grant(epoch: u64, horizon: i64, segments_epoch: u64) -> Frame {
        Frame::Grant {
            epoch: Epoch(epoch),
            horizon: Key(horizon),
            segments_epoch: Epoch(segments_epoch),
        }
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Option<Plan>, Frame, Applied)> = vec![
            (
                "first snapshot",
                None,
                Frame::Snapshot(plan(3, 10)),
                Applied::Install(Arc::new(plan(3, 10))),
            ),
            (
                "older snapshot",
                Some(plan(5, 10)),
                Frame::Snapshot(plan(4, 10)),
                Applied::Stale,
            ),
            (
                "same snapshot",
                Some(plan(5, 10)),
                Frame::Snapshot(plan(5, 10)),
                Applied::Stale,
            ),
            (
                "grant on held segments",
                Some(plan(5, 10)),
                grant(7, 30, 4),
                Applied::Install(Arc::new(plan(7, 30))),
            ),
            (
                "grant on segments not held",
                Some(plan(5, 10)),
                grant(7, 30, 6),
                Applied::NeedSnapshot,
            ),
            (
                "grant without a plan",
                None,
                grant(7, 30, 1),
                Applied::NeedSnapshot,
            ),
            (
                "stale grant",
                Some(plan(7, 30)),
                grant(6, 20, 1),
                Applied::Stale,
            ),
            (
                "grant lowering the horizon",
                Some(plan(5, 10)),
                grant(7, 5, 1),
                Applied::NeedSnapshot,
            ),
        ];
        for (name, held, frame, expected) in cases {
            assert_eq!(apply(held.as_ref(), frame), expected, "{name}");
        }
    }
}
