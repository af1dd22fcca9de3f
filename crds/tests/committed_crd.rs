//! The CustomResourceDefinition committed under `crds/` is the one the code
//! generates (regenerate with `cutover crds > crds/flinkbluegreendeployments.cutover.dev.yaml`),
//! and it has what `kubectl` and the API server need.

use cutover_crds::crd_yaml;

const COMMITTED: &str = include_str!("../flinkbluegreendeployments.cutover.dev.yaml");

#[test]
fn the_committed_crd_is_current() {
    let generated = crd_yaml().expect("the CRD serialises");
    assert!(
        generated == COMMITTED,
        "crds/flinkbluegreendeployments.cutover.dev.yaml is stale: run \
         `cargo run -p cutover-cli -- crds > crds/flinkbluegreendeployments.cutover.dev.yaml`"
    );
}

#[test]
fn the_crd_names_its_group_kind_columns_and_status() {
    let crd: serde_json::Value = serde_yaml::from_str(COMMITTED).expect("valid YAML");
    assert_eq!(
        crd["metadata"]["name"],
        "flinkbluegreendeployments.cutover.dev"
    );
    assert_eq!(crd["spec"]["group"], "cutover.dev");
    assert_eq!(crd["spec"]["names"]["kind"], "FlinkBlueGreenDeployment");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(
        version["subresources"]["status"].is_object(),
        "status subresource"
    );
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Ready", "State", "Active", "Phase", "Epoch", "Reason", "Error", "Age"
        ]
    );
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"][0], "template");
    assert_eq!(
        spec["properties"]["template"]["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"],
        true,
        "the FlinkDeployment spec is kept as written"
    );
    let states = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["state"]
        ["enum"];
    assert!(
        states
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == "TRANSITIONING_TO_GREEN")),
        "official state names: {states}"
    );
    // The API server refuses `type` inside `anyOf` (structural schemas).
    assert!(!COMMITTED.contains("anyOf"), "no anyOf in the schema");
}
