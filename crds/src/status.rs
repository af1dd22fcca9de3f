//! `status` of a FlinkBlueGreenDeployment: what the controller observed and
//! did, for `kubectl get` and for the controller itself after a restart.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the deployment stands. The names are the official Flink
/// operator's blue/green states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlueGreenState {
    /// The first colour (BLUE) is being created (a new resource's state).
    #[default]
    InitializingBlue,
    /// BLUE runs and emits; no transition.
    ActiveBlue,
    /// A savepoint of BLUE is taken to start GREEN from.
    SavepointingBlue,
    /// GREEN starts, the cutover runs, BLUE drains and stops.
    TransitioningToGreen,
    /// GREEN runs and emits; no transition.
    ActiveGreen,
    /// A savepoint of GREEN is taken to start BLUE from.
    SavepointingGreen,
    /// BLUE starts, the cutover runs, GREEN drains and stops.
    TransitioningToBlue,
}

/// Gate counts of one colour, from the coordinator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ColourGates {
    /// Gates announced by the job's parallelism.
    pub expected: u32,
    /// Gates connected to the coordinator.
    pub connected: u32,
    /// Connected gates holding the current plan.
    pub acked: u32,
}

/// Gate counts per colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GatesByColour {
    /// BLUE's gates.
    pub blue: ColourGates,
    /// GREEN's gates.
    pub green: ColourGates,
}

/// A status condition, as Kubernetes conventions have them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What the condition is about (`Ready`, `Transitioning`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word for machines.
    pub reason: String,
    /// A sentence for people.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation this condition describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// What the controller observed and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkBlueGreenDeploymentStatus {
    /// Where the deployment stands.
    #[serde(default)]
    pub state: BlueGreenState,
    /// The colour that emits at the end of the timeline (`BLUE`, `GREEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_colour: Option<String>,
    /// Epoch of the coordinator's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Phase of the latest transition (`SCHEDULED`, `CUTTING_OVER`,
    /// `DRAINED`, `COMPLETED`, `ABORTED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_phase: Option<String>,
    /// Gate counts per colour.
    #[serde(default)]
    pub gates: GatesByColour,
    /// Hash of the template the active colour runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_template_hash: Option<String>,
    /// Hash of the template the colour being started runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_template_hash: Option<String>,
    /// Hash of a template whose new colour failed and was rolled back; it
    /// is not tried again until `spec.template` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_template_hash: Option<String>,
    /// When the old colour was stopped after the last completed transition
    /// (RFC 3339): the deletion delay counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_colour_stopped_at: Option<String>,
    /// When the running transition started its new colour (RFC 3339): the
    /// abort grace period counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_started_at: Option<String>,
    /// Savepoint or checkpoint the newest colour started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_savepoint: Option<String>,
    /// Conditions (`Ready`, `Transitioning`, `AwaitingPromotion`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last error, until the next successful step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
