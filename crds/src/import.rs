//! [`import_official`]: the Apache Flink Kubernetes Operator's
//! `FlinkBlueGreenDeployment` (`flink.apache.org/v1beta1`, operator 1.14+)
//! as a cutover one, with a note for everything that has no equivalent or
//! changes meaning. The template moves over unchanged but for the official
//! gate's settings; the configuration keys map to cutover's fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{
    BlueGreenConfiguration, DecisionMode, DurationText, FlinkBlueGreenDeployment,
    FlinkBlueGreenDeploymentSpec, FlinkDeploymentTemplate,
};

/// The official operator's configuration keys cutover maps.
const ABORT_GRACE_PERIOD: &str = "kubernetes.operator.bluegreen.abort.grace-period";
const DELETION_DELAY: &str = "kubernetes.operator.bluegreen.deployment-deletion.delay";
const RESCHEDULE_INTERVAL: &str =
    "kubernetes.operator.bluegreen.reconciliation.reschedule-interval";
const GATE_TIMEOUT: &str = "kubernetes.operator.bluegreen.gate.timeout";
/// Prefix of the official gate's settings in the job's flinkConfiguration.
const OFFICIAL_GATE_PREFIX: &str = "bluegreen.gate.";

/// Why a resource cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// It is not the official operator's FlinkBlueGreenDeployment.
    #[error(
        "not a flink.apache.org FlinkBlueGreenDeployment (apiVersion {api_version:?}, kind {kind:?})"
    )]
    NotOfficial {
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
    },
    /// It has no `spec.template.spec`.
    #[error("spec.template.spec is missing: there is no FlinkDeployment to run")]
    NoTemplate,
    /// A field does not have the shape the official CRD gives it.
    #[error("{field}: {reason}")]
    Malformed {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// An imported resource and what the import could not carry over as it was.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The cutover resource.
    pub resource: FlinkBlueGreenDeployment,
    /// One sentence per setting without an equivalent or with another
    /// meaning, and per step left to the user.
    pub notes: Vec<String>,
}

/// Choices the official resource cannot express.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `spec.configuration.coordinator` (default: cutover's).
    pub coordinator: Option<String>,
    /// The savepoint BLUE's first start resumes from (the official active
    /// child's, taken when it was suspended).
    pub initial_savepoint: Option<String>,
}

/// A Flink duration (`10 min`, `15s`, `0ms`, `1 h`, `2 d`) in cutover's
/// notation, or `None` if it is not one.
pub fn flink_duration(text: &str) -> Option<String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        _ => return None,
    };
    Some(format!("{number}{unit}"))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_map(value: &Value, field: &str) -> Result<BTreeMap<String, String>, ImportError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                text(v)
                    .map(|v| (k.clone(), v))
                    .ok_or_else(|| ImportError::Malformed {
                        field: format!("{field}.{k}"),
                        reason: "not a string".into(),
                    })
            })
            .collect(),
        _ => Err(ImportError::Malformed {
            field: field.into(),
            reason: "not a map".into(),
        }),
    }
}

/// Converts an official `FlinkBlueGreenDeployment` (as JSON) into cutover's.
pub fn import_official(official: &Value, options: &ImportOptions) -> Result<Imported, ImportError> {
    let api_version = official["apiVersion"].as_str().unwrap_or("");
    let kind = official["kind"].as_str().unwrap_or("");
    if !api_version.starts_with("flink.apache.org/") || kind != "FlinkBlueGreenDeployment" {
        return Err(ImportError::NotOfficial {
            api_version: api_version.into(),
            kind: kind.into(),
        });
    }
    let spec = &official["spec"];
    let mut notes = Vec::new();
    let mut configuration = BlueGreenConfiguration::default();
    let settings = string_map(&spec["configuration"], "spec.configuration")?;
    let duration = |key: &str, field: &str, notes: &mut Vec<String>| -> Option<DurationText> {
        let value = settings.get(key)?;
        match flink_duration(value) {
            Some(d) => Some(DurationText(d)),
            None => {
                notes.push(format!(
                    "{key}: {value:?} is not a duration; cutover's default {field} applies"
                ));
                None
            }
        }
    };
    if let Some(d) = duration(ABORT_GRACE_PERIOD, "abortGracePeriod", &mut notes) {
        configuration.abort_grace_period = d;
    }
    // The official default deletes the old deployment at once (0 ms):
    // keep that unless the resource says otherwise.
    configuration.deletion_delay = duration(DELETION_DELAY, "deletionDelay", &mut notes)
        .unwrap_or_else(|| DurationText("0s".into()));
    if configuration
        .deletion_delay
        .parse()
        .is_ok_and(|d| d.is_zero())
    {
        notes.push(
            "deletionDelay is 0s, as the official resource had it: the previous colour is deleted once stopped, so `kubectl cutover rollback` has nothing to return to; cutover's default is 5m".into(),
        );
    }
    if settings.contains_key(RESCHEDULE_INTERVAL) {
        notes.push(format!(
            "{RESCHEDULE_INTERVAL}: no equivalent; the controller reacts to its children's and the coordinator's changes, and re-reads every resource at `cutover controller --resync` (default 5m)"
        ));
    }
    if let Some(timeout) = settings.get(GATE_TIMEOUT) {
        notes.push(format!(
            "{GATE_TIMEOUT} ({timeout}): no equivalent; a cutover is not timed out once irrevocable (the CutoverTransitionStuckCuttingOver alert watches it), and abortGracePeriod bounds the time the new colour has to become ready"
        ));
    }
    for key in settings.keys().filter(|k| {
        ![
            ABORT_GRACE_PERIOD,
            DELETION_DELAY,
            RESCHEDULE_INTERVAL,
            GATE_TIMEOUT,
        ]
        .contains(&k.as_str())
    }) {
        notes.push(format!("spec.configuration.{key}: no equivalent, left out"));
    }
    if let Some(coordinator) = &options.coordinator {
        configuration.coordinator = coordinator.clone();
    }

    let template = &spec["template"];
    let mut template_spec = match &template["spec"] {
        Value::Object(map) => map.clone(),
        Value::Null => return Err(ImportError::NoTemplate),
        _ => {
            return Err(ImportError::Malformed {
                field: "spec.template.spec".into(),
                reason: "not a map".into(),
            });
        }
    };
    match spec["transitionMode"].as_str().unwrap_or("BASIC") {
        "ADVANCED" => notes.push(
            "transitionMode ADVANCED: the official gate (its Java agent and the flink-kubernetes-operator-bluegreen-client dependency) is replaced by cutover's gate, which the job must contain before each sink (GateOperator, or gate() in PyFlink); the hand-over is exact for every record with a timestamp, late ones included".into(),
        ),
        _ => notes.push(
            "transitionMode BASIC: the official operator switched jobs without a hand-over; with cutover the job must contain cutover's gate before each sink (GateOperator, or gate() in PyFlink), and both colours then run side by side with exactly one of them emitting each record".into(),
        ),
    }
    configuration.decision_mode = DecisionMode::EventTime;
    if let Some(Value::Object(flink)) = template_spec.get_mut("flinkConfiguration") {
        let official_gate: Vec<String> = flink
            .keys()
            .filter(|k| k.starts_with(OFFICIAL_GATE_PREFIX))
            .cloned()
            .collect();
        for key in official_gate {
            flink.remove(&key);
            notes.push(format!(
                "flinkConfiguration.{key}: the official gate's setting, left out (cutover decides on each record's timestamp, decisionMode EVENT_TIME)"
            ));
        }
    }
    let job = template_spec
        .entry("job")
        .or_insert_with(|| Value::Object(Map::new()));
    let mut suspend = false;
    if let Value::Object(job) = job {
        if job.get("state").and_then(Value::as_str) == Some("suspended") {
            suspend = true;
            job.remove("state");
            notes.push("template job.state suspended: imported as spec.suspend: true".into());
        }
        if job.get("upgradeMode").and_then(Value::as_str) == Some("stateless") {
            notes.push(
                "job.upgradeMode stateless: each new colour starts without the old one's state; use savepoint (the default cutover sets) for a stateful hand-over".into(),
            );
        }
        if let Some(savepoint) = &options.initial_savepoint {
            job.insert(
                "initialSavepointPath".into(),
                Value::String(savepoint.clone()),
            );
        } else if !job.contains_key("initialSavepointPath") {
            notes.push(
                "no initial savepoint: BLUE starts without state; pass --initial-savepoint with the savepoint of the official resource's active child".into(),
            );
        }
    }
    if !spec["ingress"].is_null() {
        notes.push(
            "spec.ingress: no equivalent; cutover does not route the Flink UI (ingresses in spec.template.spec are created per child by the Flink operator)".into(),
        );
    }
    let state = official["status"]["blueGreenState"].as_str().unwrap_or("");
    if !state.is_empty() {
        notes.push(format!(
            "the official resource is {state}; its status is not imported: cutover starts with BLUE from the initial savepoint"
        ));
    }

    let template = FlinkDeploymentTemplate {
        metadata: crate::TemplateMetadata {
            labels: string_map(
                &template["metadata"]["labels"],
                "spec.template.metadata.labels",
            )?,
            annotations: string_map(
                &template["metadata"]["annotations"],
                "spec.template.metadata.annotations",
            )?,
        },
        spec: Value::Object(template_spec),
    };
    let name = official["metadata"]["name"]
        .as_str()
        .ok_or_else(|| ImportError::Malformed {
            field: "metadata.name".into(),
            reason: "missing".into(),
        })?;
    let mut resource = FlinkBlueGreenDeployment::new(
        name,
        FlinkBlueGreenDeploymentSpec {
            template,
            configuration,
            placement: Default::default(),
            suspend,
        },
    );
    resource.metadata.namespace = official["metadata"]["namespace"]
        .as_str()
        .map(str::to_string);
    let labels = string_map(&official["metadata"]["labels"], "metadata.labels")?;
    if !labels.is_empty() {
        resource.metadata.labels = Some(labels);
    }
    Ok(Imported { resource, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_durations_become_cutover_durations() {
        let table = [
            ("10 min", Some("10m")),
            ("15s", Some("15s")),
            ("0ms", Some("0ms")),
            ("2 h", Some("2h")),
            ("1 d", Some("1d")),
            ("500", Some("500ms")),
            ("10 minutes", Some("10m")),
            ("soon", None),
            ("10 fortnights", None),
        ];
        for (flink, expected) in table {
            assert_eq!(flink_duration(flink).as_deref(), expected, "{flink}");
            if let Some(d) = expected {
                assert!(humantime::parse_duration(d).is_ok(), "{d} parses");
            }
        }
    }
}
