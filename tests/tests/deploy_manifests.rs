//! `deploy/cutover.yaml` agrees with the code: the container runs flags
//! `cutover serve` has, on the ports its Service and probes use; the
//! Service is where the CRD's default coordinator address points; the Role
//! grants what the ConfigMap store does and no more.

use std::collections::BTreeSet;

use cutover_tests::process::cutover_binary;
use serde::Deserialize;
use serde_json::Value;

fn documents() -> Vec<Value> {
    let text = include_str!("../../deploy/cutover.yaml");
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/cutover.yaml"))
}

fn port_of(address: &str) -> u64 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address}"))
}

#[test]
fn the_manifests_agree_with_the_code() -> anyhow::Result<()> {
    let docs = documents();
    let deployment = find(&docs, "Deployment");
    let service = find(&docs, "Service");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args.first(), Some(&"serve"));
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} missing"))
            .to_string()
    };

    // Every flag exists in `cutover serve`.
    let help = std::process::Command::new(cutover_binary()?)
        .args(["serve", "--help"])
        .output()?;
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in &args[1..] {
        let name = arg.split('=').next().unwrap_or(arg);
        assert!(help.contains(name), "cutover serve has no {name}");
    }
    assert!(flag("store").starts_with("configmap"));

    // Ports: flags, container, probes and Service line up.
    let grpc = port_of(&flag("listen"));
    let metrics = port_of(&flag("metrics-listen"));
    let container_port = |name: &str| {
        container["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == name))
            .map(|p| p["containerPort"].as_u64().unwrap_or(0))
    };
    assert_eq!(container_port("grpc"), Some(grpc));
    assert_eq!(container_port("metrics"), Some(metrics));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["grpc"]["port"].as_u64(),
            Some(grpc),
            "{probe}"
        );
    }
    let service_port = |name: &str| {
        service["spec"]["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == name))
            .map(|p| (p["port"].as_u64().unwrap_or(0), p["targetPort"].clone()))
    };
    assert_eq!(service_port("grpc"), Some((grpc, Value::from("grpc"))));
    assert_eq!(
        service_port("metrics"),
        Some((metrics, Value::from("metrics")))
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );

    // The CRD's default coordinator address is this Service.
    let address = format!(
        "http://{}.{}.svc:{grpc}",
        service["metadata"]["name"].as_str().unwrap_or(""),
        service["metadata"]["namespace"].as_str().unwrap_or("")
    );
    assert_eq!(
        cutover_crds::BlueGreenConfiguration::default().coordinator,
        address
    );

    // RBAC: the ConfigMap store's calls (get_opt, list, watch, create,
    // replace, delete) on configmaps in its namespace, nothing more.
    let role = find(&docs, "Role");
    let rules = role["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["resources"], serde_json::json!(["configmaps"]));
    let verbs: BTreeSet<&str> = rules[0]["verbs"]
        .as_array()
        .expect("verbs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        verbs,
        BTreeSet::from(["get", "list", "watch", "create", "update", "delete"])
    );
    let binding = find(&docs, "RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0]["name"],
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
    );
    Ok(())
}
