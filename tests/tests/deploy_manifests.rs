//! `deploy/` agrees with the code. `cutover.yaml`: the container runs
//! flags `cutover serve` has, on the ports its Service and probes use; the
//! Service is where the CRD's default coordinator address points; the Role
//! grants what the ConfigMap store does and no more. `controller.yaml`: the
//! container runs flags `cutover controller` has, its probe and port match
//! its metrics address, and its ClusterRole is bound to the account it runs
//! as (what that role grants is checked against the controller's requests
//! in `controller.rs`).

use std::collections::BTreeSet;

use cutover_tests::manifests::flags_exist;
use serde::Deserialize;
use serde_json::Value;

fn documents() -> Vec<Value> {
    parse(include_str!("../../deploy/base/cutover.yaml"))
}

fn parse(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifest"))
}

fn port_of(address: &str) -> u64 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address}"))
}

fn args_of(deployment: &Value) -> Vec<&str> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn the_controller_manifest_agrees_with_the_code() -> anyhow::Result<()> {
    let docs = parse(include_str!("../../deploy/base/controller.yaml"));
    let deployment = find(&docs, "Deployment");
    let args = args_of(deployment);
    assert_eq!(args.first(), Some(&"controller"));
    flags_exist("controller", &args[1..])?;
    let metrics = args
        .iter()
        .find_map(|a| a.strip_prefix("--metrics-listen="))
        .map(port_of)
        .expect("--metrics-listen");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["name"], "metrics");
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(metrics)
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));

    let account = find(&docs, "ServiceAccount");
    let coordinator = documents();
    let namespace = &find(&coordinator, "Namespace")["metadata"]["name"];
    assert_eq!(&account["metadata"]["namespace"], namespace);
    assert_eq!(&deployment["metadata"]["namespace"], namespace);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );
    let role = find(&docs, "ClusterRole");
    let binding = find(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
    assert_eq!(&binding["subjects"][0]["namespace"], namespace);
    // The rules name this project's resource and the Flink operator's, and
    // Secrets only to read.
    let crd = cutover_crds::crd_yaml()?;
    for rule in role["rules"].as_array().expect("rules") {
        let group = rule["apiGroups"][0].as_str().unwrap_or("");
        let resource = rule["resources"][0].as_str().unwrap_or("");
        match group {
            "cutover.dev" => assert!(
                crd.contains(&format!("plural: {}", resource.trim_end_matches("/status"))),
                "{resource} is not the CRD's plural"
            ),
            "flink.apache.org" => assert_eq!(
                resource,
                cutover_controller::edge::flink_deployment_resource().plural
            ),
            "events.k8s.io" => assert_eq!(resource, "events"),
            // Only reading: the kubeconfig of a cluster a colour is placed in.
            "" => assert_eq!(
                (resource, rule["verbs"].clone()),
                ("secrets", serde_json::json!(["get"]))
            ),
            other => panic!("unexpected API group {other}"),
        }
    }
    Ok(())
}

#[test]
fn the_manifests_agree_with_the_code() -> anyhow::Result<()> {
    let docs = documents();
    let deployment = find(&docs, "Deployment");
    let service = find(&docs, "Service");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args = args_of(deployment);
    assert_eq!(args.first(), Some(&"serve"));
    // Three replicas serve together; a disruption takes one at a time.
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(3));
    let budget = find(&docs, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["minAvailable"].as_u64(), Some(2));
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    // The ConfigMap store gives its records to the Pod it runs in.
    let env: BTreeSet<(&str, &str)> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?,
                e["valueFrom"]["fieldRef"]["fieldPath"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(
        env,
        BTreeSet::from([("POD_NAME", "metadata.name"), ("POD_UID", "metadata.uid")])
    );
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} missing"))
            .to_string()
    };

    // Every flag exists in `cutover serve`.
    flags_exist("serve", &args[1..])?;
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
