//! The child FlinkDeployments: building `<name>-<colour>` from the
//! template, and reading a child's status back into a [`Child`].
//!
//! Pure JSON in and out (the Flink operator's resources are not typed
//! here): the edge sends what [`child_object`] returns and hands what it
//! reads to [`observe_child`].

use cutover_core::{Colour, PipelineName};
use cutover_crds::{FlinkBlueGreenDeployment, FlinkDeploymentTemplate};
use serde_json::{Map, Value, json};

use crate::observed::{Child, JobHealth};

/// API version of the Flink operator's FlinkDeployment.
pub const FLINK_API_VERSION: &str = "flink.apache.org/v1beta1";
/// Annotation holding the hash of the template a child was built from.
pub const TEMPLATE_HASH: &str = "cutover.dev/template-hash";
/// Annotation holding, on a child, the template (JSON) it was made from.
pub const TEMPLATE_ANNOTATION: &str = "cutover.dev/template";
/// Annotation naming, on a child in another cluster, the resource that
/// owns it (`<namespace>/<name>`).
pub const OWNER_ANNOTATION: &str = "cutover.dev/owner";
/// Annotation holding, on a child in another cluster, its owner's uid.
pub const OWNER_UID_ANNOTATION: &str = "cutover.dev/owner-uid";
/// Label naming a child's colour.
pub const COLOUR_LABEL: &str = "cutover.dev/colour";
/// Flink configuration keys the gates read.
pub const COORDINATOR_KEY: &str = "cutover.coordinator";
/// Pipeline name key.
pub const PIPELINE_KEY: &str = "cutover.pipeline";
/// Colour key.
pub const COLOUR_KEY: &str = "cutover.colour";

/// Why a child cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChildError {
    /// The resource lacks a metadata field a child needs (it was not read
    /// from the API server).
    #[error("the FlinkBlueGreenDeployment has no metadata.{0}")]
    MissingMetadata(&'static str),
    /// `spec.template.spec` is not an object.
    #[error("spec.template.spec must be an object (a FlinkDeployment spec)")]
    TemplateNotObject,
    /// Namespace and name do not make a valid pipeline name.
    #[error("pipeline name for {namespace}/{name}: {reason}")]
    PipelineName {
        /// The namespace.
        namespace: String,
        /// The resource name.
        name: String,
        /// Why the derived name is refused.
        reason: String,
    },
    /// `spec.template.spec.job` is missing or not an object: a blue/green
    /// deployment needs an application job.
    #[error("spec.template.spec.job must be an object: blue/green needs an application job")]
    NoJob,
}

/// `<name>-blue` or `<name>-green`.
pub fn child_name(name: &str, colour: Colour) -> String {
    format!("{name}-{}", colour.to_string().to_lowercase())
}

/// The coordinator pipeline of a resource: `<namespace>-<name>` with dots
/// turned into dashes (at most 63 characters).
pub fn pipeline_name(namespace: &str, name: &str) -> Result<PipelineName, ChildError> {
    PipelineName::new(format!("{namespace}-{name}").replace('.', "-")).map_err(|e| {
        ChildError::PipelineName {
            namespace: namespace.to_string(),
            name: name.to_string(),
            reason: e.to_string(),
        }
    })
}

/// A stable hash of a template: FNV-1a over its JSON with sorted keys.
pub fn template_hash(template: &FlinkDeploymentTemplate) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    let hash = canonical.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The FlinkDeployment of `colour`: the template's spec with the
/// coordinator address, pipeline and colour in its Flink configuration,
/// the job starting from `savepoint` (else from the template's
/// `initialSavepointPath`, if any), owned by `resource` — or, for a colour
/// placed in another cluster (`spec.placement`), in the namespace named
/// there, dialling that cluster's coordinators, with its owner in
/// annotations.
pub fn child_object(
    resource: &FlinkBlueGreenDeployment,
    colour: Colour,
    savepoint: Option<&str>,
) -> Result<Value, ChildError> {
    let meta = &resource.metadata;
    let name = meta
        .name
        .as_deref()
        .ok_or(ChildError::MissingMetadata("name"))?;
    let namespace = meta
        .namespace
        .as_deref()
        .ok_or(ChildError::MissingMetadata("namespace"))?;
    let uid = meta
        .uid
        .as_deref()
        .ok_or(ChildError::MissingMetadata("uid"))?;
    let pipeline = pipeline_name(namespace, name)?;
    let placement = resource.spec.placement.of(colour);
    let template = &resource.spec.template;
    let mut spec = match &template.spec {
        Value::Object(spec) => spec.clone(),
        _ => return Err(ChildError::TemplateNotObject),
    };
    let Some(Value::Object(job)) = spec.get_mut("job") else {
        return Err(ChildError::NoJob);
    };
    // Without a savepoint of the other colour the template's own
    // `initialSavepointPath` (if any) applies: the savepoint of the
    // FlinkDeployment the resource replaced, for its first start.
    if let Some(path) = savepoint {
        job.insert("initialSavepointPath".into(), json!(path));
    }
    job.entry("upgradeMode").or_insert(json!("savepoint"));
    job.insert("state".into(), json!("running"));
    let config = spec
        .entry("flinkConfiguration")
        .or_insert_with(|| Value::Object(Map::new()));
    if !config.is_object() {
        *config = Value::Object(Map::new());
    }
    if let Value::Object(config) = config {
        let coordinator = placement
            .and_then(|p| p.coordinator.as_ref())
            .unwrap_or(&resource.spec.configuration.coordinator);
        config.insert(COORDINATOR_KEY.into(), json!(coordinator));
        config.insert(PIPELINE_KEY.into(), json!(pipeline.as_str()));
        config.insert(COLOUR_KEY.into(), json!(colour.to_string()));
    }
    let mut labels = template.metadata.labels.clone();
    labels.insert("app.kubernetes.io/managed-by".into(), "cutover".into());
    labels.insert(COLOUR_LABEL.into(), colour.to_string().to_lowercase());
    let mut annotations = template.metadata.annotations.clone();
    annotations.insert(TEMPLATE_HASH.into(), template_hash(template));
    // The template itself, so that a rollback can return to it while the
    // child is kept (`kubectl cutover rollback`).
    annotations.insert(
        TEMPLATE_ANNOTATION.into(),
        serde_json::to_string(template).unwrap_or_default(),
    );
    let mut metadata = json!({
        "name": child_name(name, colour),
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [{
            "apiVersion": "cutover.dev/v1alpha1",
            "kind": "FlinkBlueGreenDeployment",
            "name": name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }],
    });
    // In another cluster an owner reference would name an object that does
    // not exist there (its garbage collector would delete the child): the
    // owner is named in annotations instead, and the controller deletes the
    // child itself.
    if let Some(placement) = placement {
        metadata["namespace"] = json!(placement.namespace.as_deref().unwrap_or(namespace));
        if let Some(meta) = metadata.as_object_mut() {
            meta.remove("ownerReferences");
        }
        metadata["annotations"][OWNER_ANNOTATION] = json!(format!("{namespace}/{name}"));
        metadata["annotations"][OWNER_UID_ANNOTATION] = json!(uid);
    }
    Ok(json!({
        "apiVersion": FLINK_API_VERSION,
        "kind": "FlinkDeployment",
        "metadata": metadata,
        "spec": Value::Object(spec),
    }))
}

/// A child as its FlinkDeployment object shows it.
///
/// Job health from `status.lifecycleState` and `status.jobStatus.state`:
/// FAILED in either (or a job FAILED/CANCELED) is a failure with
/// `status.error`; a job RUNNING in a STABLE deployment is running; a
/// SUSPENDED deployment or job is suspended; anything else is starting.
/// Savepoint: `status.jobStatus.upgradeSavepointPath`, else
/// `status.jobStatus.savepointInfo.lastSavepoint.location`.
pub fn observe_child(object: &Value) -> Child {
    let status = &object["status"];
    let lifecycle = status["lifecycleState"].as_str().unwrap_or("");
    let job = status["jobStatus"]["state"].as_str().unwrap_or("UNKNOWN");
    let error = || {
        status["error"].as_str().map_or_else(
            || format!("deployment {lifecycle}, job {job}"),
            str::to_string,
        )
    };
    let health = if lifecycle == "FAILED" || matches!(job, "FAILED" | "CANCELED") {
        JobHealth::Failed(error())
    } else if lifecycle == "SUSPENDED" || job == "SUSPENDED" {
        JobHealth::Suspended
    } else if lifecycle == "STABLE" && job == "RUNNING" {
        JobHealth::Running
    } else {
        JobHealth::Starting
    };
    let savepoint = status["jobStatus"]["upgradeSavepointPath"]
        .as_str()
        .or_else(|| status["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"].as_str())
        .map(str::to_string);
    Child {
        template_hash: object["metadata"]["annotations"][TEMPLATE_HASH]
            .as_str()
            .unwrap_or("")
            .to_string(),
        job: health,
        savepoint,
    }
}
