//! The `FlinkBlueGreenDeployment` resource: spec and the generated
//! Kubernetes type.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::configuration::BlueGreenConfiguration;
use crate::placement::Placement;
use crate::status::FlinkBlueGreenDeploymentStatus;

/// One Flink pipeline deployed blue/green: two child FlinkDeployments
/// (`<name>-blue`, `<name>-green`) from one template, and a cutover through
/// the coordinator whenever the template changes.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "cutover.dev",
    version = "v1alpha1",
    kind = "FlinkBlueGreenDeployment",
    plural = "flinkbluegreendeployments",
    shortname = "fbgd",
    namespaced,
    doc = "A Flink pipeline deployed blue/green with record-exact cutovers through the cutover coordinator.",
    status = "FlinkBlueGreenDeploymentStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.activeColour"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.transitionPhase"}"#,
    printcolumn = r#"{"name":"Epoch","type":"integer","jsonPath":".status.epoch"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Error","type":"string","jsonPath":".status.lastError","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkBlueGreenDeploymentSpec {
    /// The FlinkDeployment both colours run, written as for the official
    /// Flink Kubernetes Operator. A change starts a transition to the other
    /// colour.
    pub template: FlinkDeploymentTemplate,
    /// How transitions run; every field has a default.
    #[serde(default)]
    pub configuration: BlueGreenConfiguration,
    /// Which cluster each colour runs in; both beside the resource when
    /// left out.
    #[serde(default)]
    pub placement: Placement,
    /// Suspend the active colour (with a savepoint) and stop transitions;
    /// `false` resumes from that savepoint.
    #[serde(default)]
    pub suspend: bool,
}

/// A FlinkDeployment as users write it: labels and annotations for the
/// children, and the `flink.apache.org/v1beta1` FlinkDeployment spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentTemplate {
    /// Labels and annotations copied onto both children.
    #[serde(default)]
    pub metadata: TemplateMetadata,
    /// The FlinkDeployment spec (image, flinkVersion, flinkConfiguration,
    /// jobManager, taskManager, job, ...), passed to the children as it is,
    /// with the coordinator's address, the pipeline and the colour added to
    /// its `flinkConfiguration`.
    #[schemars(schema_with = "free_form_object")]
    pub spec: serde_json::Value,
}

/// Labels and annotations of the children.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An object whose fields Kubernetes keeps as they are (the FlinkDeployment
/// spec is the Flink operator's to validate).
fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
