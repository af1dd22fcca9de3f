//! A pipeline's status as JSON: what `cutover status --json` prints and
//! the status page's live stream carries. Keys below every possible key
//! (`INT64_MIN`: nothing yet) are `null`.

use cutover_core::{ColourGates, Key, PipelineStatus};

/// The status of `s` as a JSON object.
pub fn status_json(s: &PipelineStatus) -> serde_json::Value {
    let gates = |g: &ColourGates| {
        let watermark = |w: Key| (w > Key::MIN).then_some(w.0);
        serde_json::json!({
            "expected": g.expected,
            "connected": g.connected,
            "acked": g.acked,
            "emitted": g.emitted,
            "dropped": g.dropped,
            "held": g.held,
            "lowest_watermark": watermark(g.lowest_watermark),
            "highest_watermark": watermark(g.highest_watermark),
            "lowest_checkpointed_watermark": g.lowest_checkpointed.map(|k| k.0),
        })
    };
    let floor = |k: Key| (k > Key::MIN).then_some(k.0);
    serde_json::json!({
        "pipeline": s.name.to_string(),
        "epoch": s.plan.epoch.0,
        "active": s.active.to_string(),
        "horizon": s.plan.horizon.0,
        "retired_below": {
            "blue": floor(s.plan.retired.blue),
            "green": floor(s.plan.retired.green),
        },
        "incarnation": s.plan.incarnation.to_string(),
        "timeline": s.plan.timeline.segments().iter().map(|segment| serde_json::json!({
            "start": floor(segment.start),
            "owner": segment.owner.to_string(),
        })).collect::<Vec<_>>(),
        "phase": s.phase.map_or_else(|| "none".into(), |p| p.to_string()),
        "transition": s.transition.as_ref().map(|t| serde_json::json!({
            "from": t.from.to_string(),
            "to": t.to.to_string(),
            "at": t.at.0,
            "auto_promote": t.auto_promote,
            "promoted": t.promoted,
        })),
        "blue": gates(&s.blue),
        "green": gates(&s.green),
        "coordinators": s.serving.iter().map(|c| serde_json::json!({
            "coordinator": c.coordinator,
            "answering": c.answering,
            "blue": c.blue,
            "green": c.green,
            "live": c.live,
            "renewed_ms_ago": c.renewed_ms_ago,
        })).collect::<Vec<_>>(),
    })
}
