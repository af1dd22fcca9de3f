//! How a client applies a frame from the coordinator to the plan it holds
//! (pure; the session task and the simulation both use it).
//!
//! Epochs compare within one incarnation of a pipeline: a snapshot of
//! another incarnation (the pipeline was deleted and created again) replaces
//! the held plan whatever its epoch; within one, a plan is replaced only by
//! a newer epoch. A horizon grant names the epoch at which the segments last
//! changed; the client applies it only if the plan it holds has those
//! segments (same incarnation, epoch at or after that one), and otherwise
//! asks for a snapshot by reconnecting. A snapshot older than the held plan
//! is never ignored silently: the coordinator sending it is behind.

use std::sync::Arc;

use cutover_core::{Epoch, Incarnation, Key, Plan};

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
        /// The pipeline's incarnation.
        incarnation: Incarnation,
    },
}

/// What applying a frame did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A newer plan to install (then acknowledge its epoch).
    Install(Arc<Plan>),
    /// The epoch held already: change nothing.
    Stale,
    /// A grant for segments the client does not hold: resynchronise.
    NeedSnapshot,
    /// A snapshot of the held incarnation older than the held plan: the
    /// coordinator is behind. Keep the held plan, report, resynchronise.
    Behind {
        /// Epoch held.
        held: Epoch,
        /// Epoch offered.
        offered: Epoch,
    },
}

/// Applies `frame` to the `held` plan.
pub fn apply(held: Option<&Plan>, frame: Frame) -> Applied {
    match frame {
        Frame::Snapshot(plan) => match held {
            Some(held) if held.incarnation != plan.incarnation => Applied::Install(Arc::new(plan)),
            Some(held) if held.epoch == plan.epoch => Applied::Stale,
            Some(held) if held.epoch > plan.epoch => Applied::Behind {
                held: held.epoch,
                offered: plan.epoch,
            },
            _ => Applied::Install(Arc::new(plan)),
        },
        Frame::Grant {
            epoch,
            horizon,
            segments_epoch,
            incarnation,
        } => match held {
            Some(held) if held.incarnation != incarnation => Applied::NeedSnapshot,
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
        let mut plan = Plan::new(Colour::Green, Incarnation(1));
        plan.epoch = Epoch(epoch);
        plan.horizon = Key(horizon);
        plan
    }

    fn reborn(epoch: u64, horizon: i64) -> Plan {
        let mut plan = plan(epoch, horizon);
        plan.incarnation = Incarnation(2);
        plan
    }

    fn grant(epoch: u64, horizon: i64, segments_epoch: u64) -> Frame {
        Frame::Grant {
            epoch: Epoch(epoch),
            horizon: Key(horizon),
            segments_epoch: Epoch(segments_epoch),
            incarnation: Incarnation(1),
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
                "older snapshot: the coordinator is behind",
                Some(plan(5, 10)),
                Frame::Snapshot(plan(4, 10)),
                Applied::Behind {
                    held: Epoch(5),
                    offered: Epoch(4),
                },
            ),
            (
                "a snapshot of a new incarnation replaces a later epoch",
                Some(plan(50, 10)),
                Frame::Snapshot(reborn(1, i64::MIN)),
                Applied::Install(Arc::new(reborn(1, i64::MIN))),
            ),
            (
                "a grant for another incarnation",
                Some(reborn(5, 10)),
                grant(7, 30, 4),
                Applied::NeedSnapshot,
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
