//! Retirement and compaction: what a completed transition lets the plan
//! forget, so that no job replays a key differently and a document stays
//! small however many transitions a pipeline goes through.
//!
//! Nothing here gives a key to a colour. Retiring a key for a colour means
//! that colour never emits it again; the fence ([`crate::fence`]) allows no
//! other change below the horizon. Two rules, both applied in the first
//! write that allows them once the latest transition is completed:
//!
//! - **The stopped colour retires every key below the cutover.** Its job
//!   decided them and was stopped with a savepoint; a later job of that
//!   colour (a rollback starts one from the running job's savepoint, which
//!   may lie below the cutover) must not emit them a second time.
//! - **The running colour retires keys below a segment start `s`** when it
//!   owns no key between its floor and `s` (nothing it decides changes), or
//!   when every one of its gates reported a last completed checkpoint at or
//!   past `s` plus the allowed lateness (no failover can replay a key below
//!   `s`). A gate that cannot report checkpoints never allows the second
//!   case: for it, keys are retired only where that changes none of its
//!   decisions.
//!
//! Below the lower of the two floors no colour emits, and the segments there
//! merge into one.

use crate::document::PipelineDoc;
use crate::ledger::Ledger;
use crate::plan::RetiredBelow;
use crate::transition::TransitionState;

/// The retirement floors `doc` may move to now, if they differ from its
/// own: only while its latest transition is completed.
pub(crate) fn retirement(doc: &PipelineDoc, ledger: &Ledger) -> Option<RetiredBelow> {
    let transition = doc.transition.as_ref()?;
    if transition.state != TransitionState::Completed {
        return None;
    }
    let lateness = doc
        .history
        .iter()
        .chain(std::iter::once(transition))
        .map(|t| t.allowed_lateness)
        .max()
        .unwrap_or(0);
    let mut retired = doc.plan.retired;
    // The cutover lies below the horizon: the transition drained.
    retired.raise(transition.from, transition.at.min(doc.horizon()));

    let running = transition.to;
    let timeline = &doc.plan.timeline;
    let limit = timeline.last().start.min(doc.horizon());
    let mut floor = retired.of(running);
    // Keys no failover of the running job can replay.
    if let Some(s) = timeline
        .segments()
        .iter()
        .map(|s| s.start)
        .filter(|&s| s > floor && s <= limit)
        .rev()
        .find(|&s| {
            ledger.checkpointed_past(
                running,
                s.saturating_add(lateness),
                doc.operators.of(running),
            )
        })
    {
        floor = s;
    }
    // Keys the running colour does not own, up to its next segment.
    if timeline.owner_of(floor) != running
        && let Some(next) = timeline
            .segments()
            .iter()
            .map(|s| s.start)
            .find(|&s| s > floor && s <= limit)
    {
        floor = next;
    }
    retired.raise(running, floor);
    (retired != doc.plan.retired).then_some(retired)
}

/// Installs `retired` in `doc` and merges the segments below both floors
/// (the caller moves the epoch).
pub(crate) fn retire(doc: &mut PipelineDoc, retired: RetiredBelow) {
    doc.plan.retired = retired;
    doc.plan.timeline = doc.plan.timeline.compacted(retired.lowest());
    doc.segments_epoch = doc.epoch();
}
