//! Timeline compaction: which old segments may merge so that a document stays
//! small however many transitions a pipeline goes through.
//!
//! Every transition appends a segment. Compaction waits until the latest
//! transition is completed — its old job is stopped — and every gate still
//! known (the new colour's, those of its recorded operators that have not
//! reconnected included, and any of the old colour's that remain) is past
//! a segment start `s` by the allowed lateness. The segments below `s` then
//! merge into the one holding `s`; keys from `s` on keep their owners, and
//! the fence ([`PipelineDoc::check_successor`]) checks exactly that.
//!
//! What changes is the owner of keys below `s`, which only records later
//! than the allowed lateness can still carry. Without compaction, such a
//! record owned by the stopped job is lost; after it, the running job emits
//! it. The exactly-once guarantee covers records within the allowed
//! lateness, as draining already assumes.

use crate::document::PipelineDoc;
use crate::domain::Key;
use crate::ledger::Ledger;
use crate::transition::TransitionState;

/// The highest segment start the timeline may be compacted at now, if it is
/// above the current floor.
pub fn compaction_floor(doc: &PipelineDoc, ledger: &Ledger) -> Option<Key> {
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
    let (from, to) = (transition.from, transition.to);
    let old = doc.operators.of(from);
    let old_known = ledger.operators(from).next().is_some() || !old.is_empty();
    let past = |mark: Key| {
        ledger.all_past(to, mark, doc.operators.of(to), false)
            && (!old_known || ledger.all_past(from, mark, old, false))
    };
    doc.plan
        .timeline
        .segments()
        .iter()
        .skip(1)
        .map(|s| s.start)
        .filter(|&s| s > doc.compacted_below && s <= doc.horizon())
        .rev()
        .find(|&s| past(s.saturating_add(lateness)))
}

/// `doc` compacted at `floor` (the caller moves the epoch).
pub(crate) fn compact(doc: &mut PipelineDoc, floor: Key) {
    doc.plan.timeline = doc.plan.timeline.compacted(floor);
    doc.compacted_below = floor;
    doc.segments_epoch = doc.epoch();
}
