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

use crate::domain::{Colour, Key};
use crate::error::CoreError;
use crate::plan::Plan;

/// Checks that plan `next` is a legal successor of plan `prev`.
pub(crate) fn check_successor(prev: &Plan, next: &Plan) -> Result<(), CoreError> {
    if next.incarnation != prev.incarnation {
        return Err(CoreError::OtherIncarnation {
            installed: prev.incarnation,
            offered: next.incarnation,
        });
    }
    if next.epoch <= prev.epoch {
        return Err(CoreError::StaleDocument {
            current: prev.epoch,
            proposed: next.epoch,
        });
    }
    let horizon = prev.horizon;
    if next.horizon < horizon {
        return Err(CoreError::FenceViolation {
            key: next.horizon,
            horizon,
        });
    }
    for colour in Colour::ALL {
        let (before, after) = (prev.retired.of(colour), next.retired.of(colour));
        if after < before || after > next.horizon {
            return Err(CoreError::InvalidRetirement {
                colour,
                floor: after,
                previous: before,
                horizon: next.horizon,
            });
        }
    }
    // Emitters are constant between segment starts and floors: checking
    // every such breakpoint below the horizon checks every key.
    let breakpoints = prev
        .timeline
        .segments()
        .iter()
        .chain(next.timeline.segments())
        .map(|s| s.start)
        .chain(
            [prev.retired, next.retired]
                .into_iter()
                .flat_map(|r| [r.blue, r.green]),
        )
        .chain(std::iter::once(Key::MIN))
        .filter(|&k| k < horizon);
    for key in breakpoints {
        let after = next.emitter(key);
        if after.is_some() && after != prev.emitter(key) {
            return Err(CoreError::FenceViolation { key, horizon });
        }
    }
    Ok(())
}
