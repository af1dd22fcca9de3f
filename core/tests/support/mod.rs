//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

use cutover_core::*;

/// The pipeline every test uses.
pub fn name() -> PipelineName {
    PipelineName::new("orders").expect("valid name")
}

/// A new document of `name()` owned by `owner` with horizon `window`.
pub fn new_doc(owner: Colour, window: u64) -> PipelineDoc {
    PipelineDoc::new(
        name(),
        owner,
        HorizonPolicy::with_window(window),
        Incarnation(1),
    )
}

/// A gate of `colour` with uid `gate`.
pub fn gate(colour: Colour, subtask_index: u32, parallelism: u32) -> GateIdentity {
    GateIdentity {
        pipeline: name(),
        colour,
        job_id: format!("{colour}-job"),
        gate_uid: "gate".into(),
        subtask_index,
        parallelism,
        attempt: 0,
    }
}

/// Subtask 0 of 1 of gate operator `uid` of `colour`.
pub fn operator_gate(colour: Colour, uid: &str) -> GateIdentity {
    GateIdentity {
        gate_uid: uid.into(),
        ..gate(colour, 0, 1)
    }
}

/// Progress at `watermark`.
pub fn progress(watermark: i64) -> GateProgress {
    GateProgress {
        watermark: Key(watermark),
        max_key: Key(watermark),
        ..GateProgress::default()
    }
}

/// An auto-promoted EVENT_TIME schedule request without lateness.
pub fn schedule(target: Colour, at: CutoverAt) -> ScheduleRequest {
    ScheduleRequest {
        target,
        at,
        mode: Mode::EventTime,
        allowed_lateness: 0,
        auto_promote: true,
    }
}

/// Installs a proposal, panicking with the reason if it is refused.
pub fn apply(
    state: &mut PipelineState,
    propose: impl FnOnce(&PipelineState) -> Result<PipelineDoc, CoreError>,
) -> PipelineDoc {
    let doc = propose(state).expect("proposal accepted");
    state.install(doc.clone()).expect("install accepted");
    doc
}

/// A pipeline owned by GREEN with one green gate (session 1) at `watermark`
/// and the horizon raised from it (window 100).
pub fn running_pipeline(watermark: i64) -> PipelineState {
    let doc = new_doc(Colour::Green, 100);
    let mut state = PipelineState::new(doc);
    state
        .attach(SessionId(1), &[gate(Colour::Green, 0, 1)], Epoch(0))
        .expect("attach");
    state
        .progress(
            SessionId(1),
            &gate(Colour::Green, 0, 1).key(),
            progress(watermark),
        )
        .expect("progress");
    apply(&mut state, |s| {
        s.propose_automatic().ok_or(CoreError::NoHorizonYet)
    });
    state
}
