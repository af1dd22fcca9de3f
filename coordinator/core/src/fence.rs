//! The fence: what a successor document may change.
//!
//! Below the installed horizon, every key has an *emitter*: its owner,
//! unless the owner retired it (then no colour emits it). A successor may
//! change a key's emitter below that horizon in one way only — from a colour
//! to none, by raising that colour's retirement floor — and never back: the
//! horizon and the floors never fall, so a retired key stays retired and
//! every other key keeps its emitter for good. Each key therefore changes
//! hands below the horizon at most once, and no later document can bring an
//! emitter back.

use crate::document::PipelineDoc;
use crate::domain::{Colour, Key};
use crate::error::CoreError;

/// Checks that `next` is a legal successor of `prev`.
pub(crate) fn check_successor(prev: &PipelineDoc, next: &PipelineDoc) -> Result<(), CoreError> {
    if next.plan.incarnation != prev.plan.incarnation {
        return Err(CoreError::OtherIncarnation {
            installed: prev.plan.incarnation,
            offered: next.plan.incarnation,
        });
    }
    if next.epoch() <= prev.epoch() {
        return Err(CoreError::StaleDocument {
            current: prev.epoch(),
            proposed: next.epoch(),
        });
    }
    let horizon = prev.horizon();
    if next.horizon() < horizon {
        return Err(CoreError::FenceViolation {
            key: next.horizon(),
            horizon,
        });
    }
    for colour in Colour::ALL {
        let (before, after) = (prev.plan.retired.of(colour), next.plan.retired.of(colour));
        if after < before || after > next.horizon() {
            return Err(CoreError::InvalidRetirement {
                colour,
                floor: after,
                previous: before,
                horizon: next.horizon(),
            });
        }
    }
    // Emitters are constant between segment starts and floors: checking
    // every such breakpoint below the horizon checks every key.
    let breakpoints = prev
        .plan
        .timeline
        .segments()
        .iter()
        .chain(next.plan.timeline.segments())
        .map(|s| s.start)
        .chain(
            [prev.plan.retired, next.plan.retired]
                .into_iter()
                .flat_map(|r| [r.blue, r.green]),
        )
        .chain(std::iter::once(Key::MIN))
        .filter(|&k| k < horizon);
    for key in breakpoints {
        let after = next.plan.emitter(key);
        if after.is_some() && after != prev.plan.emitter(key) {
            return Err(CoreError::FenceViolation { key, horizon });
        }
    }
    Ok(())
}
