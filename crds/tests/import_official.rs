//! `import_official` on a sample of the official operator's
//! FlinkBlueGreenDeployment: every setting mapped or noted, the template
//! carried over without the official gate's settings, and the result a
//! valid cutover resource.

use cutover_crds::import::{ImportError, ImportOptions, import_official};
use cutover_crds::{DecisionMode, FlinkBlueGreenDeployment};
use serde_json::{Value, json};

fn sample() -> Value {
    serde_yaml::from_str(include_str!("fixtures/official-bluegreen.yaml")).expect("fixture")
}

#[test]
fn the_official_resource_becomes_a_cutover_one() {
    let options = ImportOptions {
        coordinator: Some("https://cutover.cutover-system.svc:7700".into()),
        initial_savepoint: Some("s3://flink/savepoints/savepoint-orders-green-1".into()),
    };
    let imported = import_official(&sample(), &options).expect("imports");
    let r = &imported.resource;
    assert_eq!(r.metadata.name.as_deref(), Some("orders"));
    assert_eq!(r.metadata.namespace.as_deref(), Some("payments"));
    assert_eq!(r.metadata.uid, None, "server fields are not carried over");
    assert_eq!(
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("payments")
    );
    let c = &r.spec.configuration;
    assert_eq!(c.abort_grace_period.0, "8m");
    assert_eq!(c.deletion_delay.0, "0ms");
    assert_eq!(c.decision_mode, DecisionMode::EventTime);
    assert_eq!(c.coordinator, "https://cutover.cutover-system.svc:7700");
    c.validate().expect("a valid configuration");

    let t = &r.spec.template;
    assert_eq!(
        t.metadata.labels.get("app").map(String::as_str),
        Some("orders")
    );
    assert_eq!(
        t.metadata.annotations.get("owner").map(String::as_str),
        Some("payments-oncall")
    );
    assert_eq!(t.spec["image"], "registry.example.com/orders:2.4.1");
    assert_eq!(t.spec["job"]["parallelism"], 4);
    assert_eq!(
        t.spec["job"]["initialSavepointPath"],
        "s3://flink/savepoints/savepoint-orders-green-1"
    );
    let flink = &t.spec["flinkConfiguration"];
    assert_eq!(flink["execution.checkpointing.interval"], "30s");
    assert!(flink.get("bluegreen.gate.strategy").is_none(), "{flink}");
    assert!(flink.get("bluegreen.gate.watermark.field-path").is_none());
    assert!(!r.spec.suspend);

    let notes = imported.notes.join("\n");
    for expected in [
        "reconciliation.reschedule-interval: no equivalent",
        "gate.timeout (10 min): no equivalent",
        "transitionMode ADVANCED",
        "flinkConfiguration.bluegreen.gate.strategy",
        "spec.ingress: no equivalent",
        "deletionDelay is 0s",
        "ACTIVE_GREEN",
    ] {
        assert!(
            notes.contains(expected),
            "{expected:?} missing from:\n{notes}"
        );
    }

    // What `cutover import` prints parses back as a cutover resource.
    let yaml = serde_yaml::to_string(r).expect("yaml");
    let back: FlinkBlueGreenDeployment = serde_yaml::from_str(&yaml).expect("parses back");
    assert_eq!(&back.spec, &r.spec);
}

#[test]
fn defaults_suspension_and_refusals() {
    let mut official = sample();
    official["spec"]["configuration"] = json!({});
    official["spec"]["transitionMode"] = Value::Null;
    official["spec"]["template"]["spec"]["job"]["state"] = json!("suspended");
    official["spec"]["template"]["spec"]["job"]["upgradeMode"] = json!("stateless");
    let imported = import_official(&official, &ImportOptions::default()).expect("imports");
    let r = &imported.resource;
    assert_eq!(
        r.spec.configuration.abort_grace_period.0, "10m",
        "cutover's default"
    );
    assert_eq!(
        r.spec.configuration.deletion_delay.0, "0s",
        "the official default kept"
    );
    assert!(r.spec.suspend);
    assert!(r.spec.template.spec["job"].get("state").is_none());
    let notes = imported.notes.join("\n");
    for expected in [
        "transitionMode BASIC",
        "suspended",
        "stateless",
        "no initial savepoint",
    ] {
        assert!(
            notes.contains(expected),
            "{expected:?} missing from:\n{notes}"
        );
    }

    let mut bad = sample();
    bad["spec"]["configuration"]["kubernetes.operator.bluegreen.abort.grace-period"] =
        json!("soon");
    let imported = import_official(&bad, &ImportOptions::default()).expect("imports");
    assert_eq!(
        imported.resource.spec.configuration.abort_grace_period.0,
        "10m"
    );
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n.contains("\"soon\" is not a duration"))
    );

    let ours = json!({"apiVersion": "cutover.dev/v1alpha1", "kind": "FlinkBlueGreenDeployment"});
    assert!(matches!(
        import_official(&ours, &ImportOptions::default()),
        Err(ImportError::NotOfficial { .. })
    ));
    let mut empty = sample();
    empty["spec"]["template"] = json!({});
    assert!(matches!(
        import_official(&empty, &ImportOptions::default()),
        Err(ImportError::NoTemplate)
    ));
}
