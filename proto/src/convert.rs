//! The one place where protobuf messages become domain types and back.
//! Every field read from the wire is checked; a bad one is a [`ConvertError`]
//! naming the field.

use cutover_core::{
    Colour, ColourGates, CoreError, CutoverAt, Epoch, GateIdentity, GateKey, GateProgress,
    Incarnation, Key, Mode, Phase, PipelineName, PipelineStatus, Plan, RetiredBelow,
    ScheduleRequest, Segment, Serving, Timeline, Transition, TransitionState,
};

use crate::v1;

/// A message from the wire that does not make a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A required field is missing.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field holds a value outside its domain.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The value breaks a domain rule.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Reads a colour field.
pub fn colour_from(field: &'static str, raw: i32) -> Result<Colour, ConvertError> {
    match v1::Colour::try_from(raw) {
        Ok(v1::Colour::Blue) => Ok(Colour::Blue),
        Ok(v1::Colour::Green) => Ok(Colour::Green),
        _ => Err(ConvertError::Invalid {
            field,
            reason: format!("{raw} is not BLUE or GREEN"),
        }),
    }
}

/// Writes a colour field.
pub fn colour_to(colour: Colour) -> i32 {
    match colour {
        Colour::Blue => v1::Colour::Blue as i32,
        Colour::Green => v1::Colour::Green as i32,
    }
}

/// Reads a decision mode (unspecified means EVENT_TIME).
pub fn mode_from(raw: i32) -> Result<Mode, ConvertError> {
    match v1::DecisionMode::try_from(raw) {
        Ok(v1::DecisionMode::Unspecified | v1::DecisionMode::EventTime) => Ok(Mode::EventTime),
        Ok(v1::DecisionMode::Watermark) => Ok(Mode::Watermark),
        Err(_) => Err(ConvertError::Invalid {
            field: "mode",
            reason: format!("{raw} is not a decision mode"),
        }),
    }
}

/// Writes a decision mode.
pub fn mode_to(mode: Mode) -> i32 {
    match mode {
        Mode::EventTime => v1::DecisionMode::EventTime as i32,
        Mode::Watermark => v1::DecisionMode::Watermark as i32,
    }
}

/// Writes a phase.
pub fn phase_to(phase: Option<Phase>) -> i32 {
    (match phase {
        None => v1::Phase::Unspecified,
        Some(Phase::Scheduled) => v1::Phase::Scheduled,
        Some(Phase::CuttingOver) => v1::Phase::CuttingOver,
        Some(Phase::Drained) => v1::Phase::Drained,
        Some(Phase::Completed) => v1::Phase::Completed,
        Some(Phase::Aborted) => v1::Phase::Aborted,
        Some(Phase::Superseded) => v1::Phase::Superseded,
    }) as i32
}

/// Reads a phase.
pub fn phase_from(raw: i32) -> Option<Phase> {
    match v1::Phase::try_from(raw).ok()? {
        v1::Phase::Unspecified => None,
        v1::Phase::Scheduled => Some(Phase::Scheduled),
        v1::Phase::CuttingOver => Some(Phase::CuttingOver),
        v1::Phase::Drained => Some(Phase::Drained),
        v1::Phase::Completed => Some(Phase::Completed),
        v1::Phase::Aborted => Some(Phase::Aborted),
        v1::Phase::Superseded => Some(Phase::Superseded),
    }
}

/// Reads a pipeline name.
pub fn pipeline_from(raw: &str) -> Result<PipelineName, ConvertError> {
    Ok(PipelineName::new(raw)?)
}

/// Writes a plan.
pub fn plan_to(plan: &Plan) -> v1::Plan {
    v1::Plan {
        segments: plan
            .timeline
            .segments()
            .iter()
            .map(|s| v1::Segment {
                start: s.start.0,
                owner: colour_to(s.owner),
            })
            .collect(),
        horizon: plan.horizon.0,
        epoch: plan.epoch.0,
        mode: mode_to(plan.mode),
        blue_retired_below: floor_to(plan.retired.blue),
        green_retired_below: floor_to(plan.retired.green),
        incarnation: plan.incarnation.0,
    }
}

/// A retirement floor on the wire: unset for minus infinity.
fn floor_to(floor: Key) -> Option<i64> {
    (floor > Key::MIN).then_some(floor.0)
}

/// Reads a plan.
pub fn plan_from(plan: &v1::Plan) -> Result<Plan, ConvertError> {
    let segments = plan
        .segments
        .iter()
        .map(|s| {
            Ok(Segment {
                start: Key(s.start),
                owner: colour_from("plan.segments.owner", s.owner)?,
            })
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;
    let retired = RetiredBelow {
        blue: Key(plan.blue_retired_below.unwrap_or(i64::MIN)),
        green: Key(plan.green_retired_below.unwrap_or(i64::MIN)),
    };
    if Colour::ALL
        .into_iter()
        .any(|c| retired.of(c) > Key(plan.horizon))
    {
        return Err(ConvertError::Invalid {
            field: "plan.retired_below",
            reason: "a retirement floor lies above the horizon".into(),
        });
    }
    Ok(Plan {
        timeline: Timeline::from_segments(segments)?,
        horizon: Key(plan.horizon),
        epoch: Epoch(plan.epoch),
        mode: mode_from(plan.mode)?,
        retired,
        incarnation: Incarnation(plan.incarnation),
        unknown: Default::default(),
    })
}

/// Reads a gate identity.
pub fn gate_identity_from(g: &v1::GateIdentity) -> Result<GateIdentity, ConvertError> {
    let identity = GateIdentity {
        pipeline: pipeline_from(&g.pipeline)?,
        colour: colour_from("gate.colour", g.colour)?,
        job_id: g.job_id.clone(),
        gate_uid: g.gate_uid.clone(),
        subtask_index: g.subtask_index,
        parallelism: g.parallelism,
        attempt: g.attempt,
    };
    identity.validate()?;
    Ok(identity)
}

/// Writes a gate identity.
pub fn gate_identity_to(g: &GateIdentity) -> v1::GateIdentity {
    v1::GateIdentity {
        pipeline: g.pipeline.to_string(),
        colour: colour_to(g.colour),
        job_id: g.job_id.clone(),
        gate_uid: g.gate_uid.clone(),
        subtask_index: g.subtask_index,
        parallelism: g.parallelism,
        attempt: g.attempt,
    }
}

/// Reads a gate reference.
pub fn gate_ref_from(g: Option<&v1::GateRef>) -> Result<(PipelineName, GateKey), ConvertError> {
    let g = g.ok_or(ConvertError::Missing("gate"))?;
    Ok((
        pipeline_from(&g.pipeline)?,
        GateKey {
            colour: colour_from("gate.colour", g.colour)?,
            gate_uid: g.gate_uid.clone(),
            subtask_index: g.subtask_index,
        },
    ))
}

/// Writes a gate reference.
pub fn gate_ref_to(pipeline: &PipelineName, key: &GateKey) -> v1::GateRef {
    v1::GateRef {
        pipeline: pipeline.to_string(),
        colour: colour_to(key.colour),
        gate_uid: key.gate_uid.clone(),
        subtask_index: key.subtask_index,
    }
}

/// Reads a gate's progress.
pub fn progress_from(p: &v1::GateProgress) -> GateProgress {
    GateProgress {
        watermark: Key(p.watermark),
        max_key: Key(p.max_key),
        emitted: p.emitted,
        dropped: p.dropped,
        held: p.held,
        idle: p.idle,
        finished: p.finished,
        lowest_held: p.lowest_held_key.map(Key),
        checkpointed: p.checkpointed_watermark.map(Key),
    }
}

/// Writes a gate's progress.
pub fn progress_to(pipeline: &PipelineName, key: &GateKey, p: &GateProgress) -> v1::GateProgress {
    v1::GateProgress {
        gate: Some(gate_ref_to(pipeline, key)),
        watermark: p.watermark.0,
        max_key: p.max_key.0,
        emitted: p.emitted,
        dropped: p.dropped,
        held: p.held,
        idle: p.idle,
        finished: p.finished,
        lowest_held_key: p.lowest_held.map(|k| k.0),
        checkpointed_watermark: p.checkpointed.map(|k| k.0),
    }
}

/// Reads a schedule request.
pub fn schedule_from(
    r: &v1::ScheduleTransitionRequest,
) -> Result<(PipelineName, ScheduleRequest), ConvertError> {
    let at = match r.at {
        Some(v1::schedule_transition_request::At::Key(key)) => CutoverAt::Key(Key(key)),
        Some(v1::schedule_transition_request::At::Earliest(true)) => CutoverAt::Earliest,
        _ => return Err(ConvertError::Missing("at (a key, or earliest = true)")),
    };
    Ok((
        pipeline_from(&r.pipeline)?,
        ScheduleRequest {
            target: colour_from("target", r.target)?,
            at,
            mode: mode_from(r.mode)?,
            allowed_lateness: r.allowed_lateness,
            auto_promote: r.auto_promote,
        },
    ))
}

/// Writes a schedule request.
pub fn schedule_to(pipeline: &PipelineName, r: &ScheduleRequest) -> v1::ScheduleTransitionRequest {
    v1::ScheduleTransitionRequest {
        pipeline: pipeline.to_string(),
        target: colour_to(r.target),
        at: Some(match r.at {
            CutoverAt::Key(key) => v1::schedule_transition_request::At::Key(key.0),
            CutoverAt::Earliest => v1::schedule_transition_request::At::Earliest(true),
        }),
        mode: mode_to(r.mode),
        allowed_lateness: r.allowed_lateness,
        auto_promote: r.auto_promote,
    }
}

/// The stored state a transition's phase stands for.
fn state_of(phase: Phase) -> TransitionState {
    match phase {
        Phase::Scheduled | Phase::CuttingOver => TransitionState::Pending,
        Phase::Drained => TransitionState::Drained,
        Phase::Completed => TransitionState::Completed,
        Phase::Aborted => TransitionState::Aborted,
        Phase::Superseded => TransitionState::Superseded,
    }
}

fn transition_from(t: &v1::Transition) -> Result<Transition, ConvertError> {
    let phase = phase_from(t.phase).ok_or(ConvertError::Missing("transition.phase"))?;
    Ok(Transition {
        id: Epoch(t.id),
        from: colour_from("transition.from", t.from)?,
        to: colour_from("transition.to", t.to)?,
        at: Key(t.at),
        mode: mode_from(t.mode)?,
        allowed_lateness: t.allowed_lateness,
        auto_promote: t.auto_promote,
        promoted: t.promoted,
        state: state_of(phase),
        unknown: Default::default(),
    })
}

fn colour_gates_from(g: Option<&v1::ColourGates>) -> ColourGates {
    let g = g.copied().unwrap_or_default();
    ColourGates {
        expected: g.expected,
        connected: g.connected,
        acked: g.acked,
        lowest_watermark: Key(g.lowest_watermark),
        highest_watermark: Key(g.highest_watermark),
        lowest_checkpointed: g.lowest_checkpointed_watermark.map(Key),
        emitted: g.emitted,
        dropped: g.dropped,
        held: g.held,
    }
}

/// Reads a pipeline status.
pub fn status_from(s: &v1::PipelineStatus) -> Result<PipelineStatus, ConvertError> {
    let plan = plan_from(s.plan.as_ref().ok_or(ConvertError::Missing("plan"))?)?;
    Ok(PipelineStatus {
        name: pipeline_from(&s.pipeline)?,
        transition: s.transition.as_ref().map(transition_from).transpose()?,
        phase: phase_from(s.phase),
        active: colour_from("active", s.active)?,
        blue: colour_gates_from(s.blue.as_ref()),
        green: colour_gates_from(s.green.as_ref()),
        plan,
        serving: s
            .coordinators
            .iter()
            .map(|c| Serving {
                coordinator: c.coordinator.clone(),
                answering: c.answering,
                blue: c.blue,
                green: c.green,
                live: c.live,
                renewed_ms_ago: c.renewed_ms_ago,
            })
            .collect(),
    })
}

fn transition_to(t: &Transition, horizon: Key) -> v1::Transition {
    v1::Transition {
        id: t.id.0,
        from: colour_to(t.from),
        to: colour_to(t.to),
        at: t.at.0,
        mode: mode_to(t.mode),
        allowed_lateness: t.allowed_lateness,
        auto_promote: t.auto_promote,
        promoted: t.promoted,
        phase: phase_to(Some(t.phase(horizon))),
    }
}

fn colour_gates_to(colour: Colour, g: &ColourGates) -> v1::ColourGates {
    v1::ColourGates {
        colour: colour_to(colour),
        expected: g.expected,
        connected: g.connected,
        acked: g.acked,
        lowest_watermark: g.lowest_watermark.0,
        highest_watermark: g.highest_watermark.0,
        lowest_checkpointed_watermark: g.lowest_checkpointed.map(|k| k.0),
        emitted: g.emitted,
        dropped: g.dropped,
        held: g.held,
    }
}

/// Writes a pipeline status.
pub fn status_to(s: &PipelineStatus) -> v1::PipelineStatus {
    v1::PipelineStatus {
        pipeline: s.name.to_string(),
        plan: Some(plan_to(&s.plan)),
        transition: s
            .transition
            .as_ref()
            .map(|t| transition_to(t, s.plan.horizon)),
        phase: phase_to(s.phase),
        active: colour_to(s.active),
        blue: Some(colour_gates_to(Colour::Blue, &s.blue)),
        green: Some(colour_gates_to(Colour::Green, &s.green)),
        coordinators: s
            .serving
            .iter()
            .map(|c| v1::ServingCoordinator {
                coordinator: c.coordinator.clone(),
                blue: c.blue,
                green: c.green,
                live: c.live,
                renewed_ms_ago: c.renewed_ms_ago,
                answering: c.answering,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trips() {
        let plan = Plan {
            timeline: Timeline::new(Colour::Green)
                .with_appended(Key(5), Colour::Blue)
                .expect("valid"),
            horizon: Key(9),
            epoch: Epoch(4),
            mode: Mode::Watermark,
            retired: RetiredBelow {
                blue: Key(5),
                green: Key::MIN,
            },
            incarnation: Incarnation(77),
            unknown: Default::default(),
        };
        assert_eq!(plan_from(&plan_to(&plan)), Ok(plan));
    }

    #[test]
    fn gate_identity_round_trips_and_bad_fields_are_named() {
        let g = GateIdentity {
            pipeline: PipelineName::new("p").expect("valid"),
            colour: Colour::Blue,
            job_id: "j".into(),
            gate_uid: "u".into(),
            subtask_index: 1,
            parallelism: 2,
            attempt: 3,
        };
        assert_eq!(gate_identity_from(&gate_identity_to(&g)), Ok(g.clone()));
        let mut raw = gate_identity_to(&g);
        raw.colour = 0;
        let err = gate_identity_from(&raw).expect_err("unspecified colour");
        assert!(err.to_string().contains("gate.colour"), "{err}");
        let mut raw = gate_identity_to(&g);
        raw.subtask_index = 2;
        assert!(matches!(
            gate_identity_from(&raw),
            Err(ConvertError::Core(CoreError::InvalidGate { .. }))
        ));
    }

    #[test]
    fn a_status_and_a_schedule_round_trip() {
        let name = PipelineName::new("orders").expect("valid");
        let mut plan = Plan::new(Colour::Green, Incarnation(3));
        plan.timeline = plan
            .timeline
            .with_appended(Key(100), Colour::Blue)
            .expect("valid");
        plan.horizon = Key(150);
        plan.epoch = Epoch(9);
        let transition = Transition {
            id: Epoch(8),
            from: Colour::Green,
            to: Colour::Blue,
            at: Key(100),
            mode: Mode::EventTime,
            allowed_lateness: 5,
            auto_promote: false,
            promoted: true,
            state: TransitionState::Pending,
            unknown: Default::default(),
        };
        let gates = ColourGates {
            expected: 3,
            connected: 2,
            acked: 1,
            lowest_watermark: Key(90),
            highest_watermark: Key(140),
            lowest_checkpointed: Some(Key(80)),
            emitted: 7,
            dropped: 6,
            held: 5,
        };
        let status = PipelineStatus {
            name: name.clone(),
            phase: Some(transition.phase(plan.horizon)),
            transition: Some(transition),
            active: Colour::Blue,
            blue: gates,
            green: ColourGates { held: 0, ..gates },
            plan,
            serving: vec![
                Serving {
                    coordinator: "a-1".into(),
                    answering: true,
                    blue: 3,
                    green: 0,
                    live: true,
                    renewed_ms_ago: Some(0),
                },
                Serving {
                    coordinator: "b-2".into(),
                    answering: false,
                    blue: 1,
                    green: 4,
                    live: false,
                    renewed_ms_ago: None,
                },
            ],
        };
        assert_eq!(status_from(&status_to(&status)), Ok(status));
        let request = ScheduleRequest {
            target: Colour::Blue,
            at: CutoverAt::Key(Key(-7)),
            mode: Mode::Watermark,
            allowed_lateness: 3,
            auto_promote: true,
        };
        assert_eq!(
            schedule_from(&schedule_to(&name, &request)),
            Ok((name, request))
        );
    }

    #[test]
    fn a_plan_with_a_broken_timeline_is_refused() {
        let raw = v1::Plan {
            segments: vec![v1::Segment {
                start: 3,
                owner: colour_to(Colour::Blue),
            }],
            horizon: 0,
            epoch: 1,
            mode: 0,
            ..Default::default()
        };
        assert!(plan_from(&raw).is_err());
        let above = v1::Plan {
            segments: vec![v1::Segment {
                start: i64::MIN,
                owner: colour_to(Colour::Blue),
            }],
            horizon: 10,
            blue_retired_below: Some(11),
            ..Default::default()
        };
        assert!(plan_from(&above).is_err());
    }
}
