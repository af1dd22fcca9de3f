//! Children built from a FlinkBlueGreenDeployment and read back from their
//! FlinkDeployment status, with the Flink operator's status shapes.

use cutover_controller::child::*;
use cutover_controller::{Child, JobHealth};
use cutover_core::Colour;
use cutover_crds::{FlinkBlueGreenDeployment, FlinkBlueGreenDeploymentSpec};
use serde_json::json;

fn resource() -> FlinkBlueGreenDeployment {
    let spec: FlinkBlueGreenDeploymentSpec = serde_json::from_value(json!({
        "template": {
            "metadata": {"labels": {"team": "payments"}},
            "spec": {
                "image": "registry/orders:1.4",
                "flinkVersion": "v2_0",
                "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
                "job": {"jarURI": "local:///opt/flink/usrlib/orders.jar", "parallelism": 4},
            }
        },
        "configuration": {"coordinator": "http://cutover.flink.svc:7700"}
    }))
    .expect("a valid spec");
    let mut resource = FlinkBlueGreenDeployment::new("orders", spec);
    resource.metadata.namespace = Some("flink".into());
    resource.metadata.uid = Some("8d1f-uid".into());
    resource
}

#[test]
fn a_child_is_the_template_plus_coordinator_settings_and_an_owner() {
    let child = child_object(&resource(), Colour::Green, Some("s3://sp/7")).expect("builds");
    assert_eq!(child["apiVersion"], "flink.apache.org/v1beta1");
    assert_eq!(child["kind"], "FlinkDeployment");
    assert_eq!(child["metadata"]["name"], "orders-green");
    assert_eq!(child["metadata"]["namespace"], "flink");
    assert_eq!(child["metadata"]["labels"]["team"], "payments");
    assert_eq!(child["metadata"]["labels"]["cutover.dev/colour"], "green");
    let owner = &child["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "FlinkBlueGreenDeployment");
    assert_eq!(owner["uid"], "8d1f-uid");
    assert_eq!(owner["controller"], true);
    let config = &child["spec"]["flinkConfiguration"];
    assert_eq!(
        config["taskmanager.numberOfTaskSlots"], "2",
        "user settings kept"
    );
    assert_eq!(
        config["cutover.coordinator"],
        "http://cutover.flink.svc:7700"
    );
    assert_eq!(config["cutover.pipeline"], "flink-orders");
    assert_eq!(config["cutover.colour"], "GREEN");
    let job = &child["spec"]["job"];
    assert_eq!(job["initialSavepointPath"], "s3://sp/7");
    assert_eq!(job["upgradeMode"], "savepoint");
    assert_eq!(job["state"], "running");
    assert_eq!(job["parallelism"], 4);
    assert_eq!(
        child["metadata"]["annotations"][TEMPLATE_HASH],
        template_hash(&resource().spec.template)
    );
    let first = child_object(&resource(), Colour::Blue, None).expect("builds");
    assert!(first["spec"]["job"].get("initialSavepointPath").is_none());
    // A template migrated from a FlinkDeployment starts from its savepoint
    // until a colour's own savepoint replaces it.
    let mut migrated = resource();
    migrated.spec.template.spec["job"]["initialSavepointPath"] = "s3://old/42".into();
    let first = child_object(&migrated, Colour::Blue, None).expect("builds");
    assert_eq!(first["spec"]["job"]["initialSavepointPath"], "s3://old/42");
    let next = child_object(&migrated, Colour::Green, Some("s3://sp/8")).expect("builds");
    assert_eq!(next["spec"]["job"]["initialSavepointPath"], "s3://sp/8");
}

#[test]
fn the_template_hash_follows_the_template_not_key_order() {
    let a = resource().spec.template;
    let mut b = a.clone();
    b.spec = serde_json::from_str(
        r#"{"job": {"parallelism": 4, "jarURI": "local:///opt/flink/usrlib/orders.jar"},
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
            "flinkVersion": "v2_0", "image": "registry/orders:1.4"}"#,
    )
    .expect("json");
    assert_eq!(template_hash(&a), template_hash(&b));
    b.spec["image"] = json!("registry/orders:1.5");
    assert_ne!(template_hash(&a), template_hash(&b));
}

#[test]
fn bad_resources_are_refused_with_the_reason() {
    let mut r = resource();
    r.metadata.uid = None;
    assert_eq!(
        child_object(&r, Colour::Blue, None),
        Err(ChildError::MissingMetadata("uid"))
    );
    let mut r = resource();
    r.spec.template.spec = json!({"image": "x"});
    assert_eq!(child_object(&r, Colour::Blue, None), Err(ChildError::NoJob));
    let mut r = resource();
    r.spec.template.spec = json!(["not", "an", "object"]);
    assert_eq!(
        child_object(&r, Colour::Blue, None),
        Err(ChildError::TemplateNotObject)
    );
    assert!(matches!(
        pipeline_name(&"n".repeat(40), &"m".repeat(40)),
        Err(ChildError::PipelineName { .. })
    ));
    assert_eq!(
        pipeline_name("flink", "orders.v2").map(|p| p.to_string()),
        Ok("flink-orders-v2".to_string())
    );
}

#[test]
fn child_status_reads_as_job_health_and_savepoint() {
    let object = |status: serde_json::Value| {
        json!({
            "metadata": {"annotations": {TEMPLATE_HASH: "abc"}},
            "status": status,
        })
    };
    let table = [
        (json!({}), JobHealth::Starting, None),
        (
            json!({"lifecycleState": "DEPLOYED", "jobStatus": {"state": "RUNNING"}}),
            JobHealth::Starting,
            None,
        ),
        (
            json!({"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING",
                   "savepointInfo": {"lastSavepoint": {"location": "s3://sp/1"}}}}),
            JobHealth::Running,
            Some("s3://sp/1"),
        ),
        (
            json!({"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING",
                   "upgradeSavepointPath": "s3://sp/2",
                   "savepointInfo": {"lastSavepoint": {"location": "s3://sp/1"}}}}),
            JobHealth::Running,
            Some("s3://sp/2"),
        ),
        (
            json!({"lifecycleState": "SUSPENDED", "jobStatus": {"state": "FINISHED",
                   "upgradeSavepointPath": "s3://sp/3"}}),
            JobHealth::Suspended,
            Some("s3://sp/3"),
        ),
        (
            json!({"lifecycleState": "DEPLOYED", "jobStatus": {"state": "FAILED"},
                   "error": "java.lang.OutOfMemoryError"}),
            JobHealth::Failed("java.lang.OutOfMemoryError".into()),
            None,
        ),
        (
            json!({"lifecycleState": "FAILED"}),
            JobHealth::Failed("deployment FAILED, job UNKNOWN".into()),
            None,
        ),
    ];
    for (status, job, savepoint) in table {
        let child = observe_child(&object(status.clone()));
        assert_eq!(
            child,
            Child {
                template_hash: "abc".into(),
                job,
                savepoint: savepoint.map(str::to_string),
            },
            "{status}"
        );
    }
}
