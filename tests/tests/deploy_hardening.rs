//! `deploy/` runs locked down and its TLS overlay agrees with the code: both
//! Deployments run non-root with a read-only root filesystem and no
//! capabilities; the NetworkPolicy admits gates and the controller to the
//! gRPC port only; `kubectl kustomize deploy/overlays/tls` renders, the
//! coordinator there serves mutual TLS with a policy (no plaintext), the
//! files its flags name are mounted from the Secrets cert-manager issues,
//! the controller presents its certificate, and the policy grants the
//! controller's certificate identity what it needs.

use anyhow::Context;
use cutover_coordinator::auth::policy::{Action, Policy};
use cutover_core::Colour;
use cutover_tests::manifests::{
    container, flags_exist, named, parse, pod, render, secret_mount, strings,
};
use serde_json::Value;

fn base() -> Vec<Value> {
    let mut docs = parse(include_str!("../../deploy/base/cutover.yaml"));
    docs.extend(parse(include_str!("../../deploy/base/controller.yaml")));
    docs
}

#[test]
fn both_deployments_run_non_root_on_a_read_only_root() {
    let docs = base();
    for name in ["cutover", "cutover-controller"] {
        let deployment = named(&docs, "Deployment", name);
        let pod_security = &pod(deployment)["securityContext"];
        assert_eq!(pod_security["runAsNonRoot"], true, "{name}");
        assert!(
            pod_security["runAsUser"].as_u64().unwrap_or(0) > 0,
            "{name}"
        );
        assert_eq!(pod_security["seccompProfile"]["type"], "RuntimeDefault");
        let security = &container(deployment)["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(
            strings(&security["capabilities"]["drop"]),
            ["ALL"],
            "{name}"
        );
    }
}

#[test]
fn the_network_policy_admits_gates_and_the_controller_only() {
    let docs = base();
    let policy = named(&docs, "NetworkPolicy", "cutover");
    let coordinator = named(&docs, "Deployment", "cutover");
    let controller = named(&docs, "Deployment", "cutover-controller");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        coordinator["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(strings(&policy["spec"]["policyTypes"]), ["Ingress"]);
    let rules = policy["spec"]["ingress"].as_array().expect("ingress rules");
    let ports: Vec<&str> = container(coordinator)["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let rule_for = |port: &str| {
        rules
            .iter()
            .find(|r| r["ports"][0]["port"] == port)
            .unwrap_or_else(|| panic!("no rule for port {port}"))
    };
    for rule in rules {
        let port = rule["ports"][0]["port"].as_str().expect("a named port");
        assert!(ports.contains(&port), "{port} is not a coordinator port");
        assert!(rule["from"].as_array().is_some_and(|f| !f.is_empty()));
    }
    let grpc_from = rule_for("grpc")["from"].as_array().expect("from");
    assert!(
        grpc_from
            .iter()
            .any(|f| f["podSelector"]["matchLabels"]["cutover.dev/gate"] == "true"),
        "gates are admitted"
    );
    assert!(
        grpc_from.iter().any(|f| f["podSelector"]["matchLabels"]
            == controller["spec"]["template"]["metadata"]["labels"]),
        "the controller is admitted"
    );
    assert_eq!(rules.len(), 2, "grpc and metrics, nothing else");
}

#[test]
fn the_tls_overlay_renders_and_agrees_with_the_code() -> anyhow::Result<()> {
    let docs = render("tls")?;
    let coordinator = named(&docs, "Deployment", "cutover");
    let args = strings(&container(coordinator)["args"]);
    assert_eq!(args.first(), Some(&"serve"));
    flags_exist("serve", &args[1..])?;
    assert!(!args.contains(&"--insecure-plaintext"), "no plaintext");
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} missing"))
    };
    // The server's files come from the Secret of its Certificate.
    let server = named(&docs, "Certificate", "cutover-server");
    let mount = secret_mount(
        coordinator,
        server["spec"]["secretName"].as_str().unwrap_or(""),
    );
    for name in ["tls-cert", "tls-key", "tls-client-ca"] {
        assert!(flag(name).starts_with(mount), "--{name} is under {mount}");
    }
    let service = named(&docs, "Service", "cutover");
    let host = format!(
        "cutover.{}.svc",
        service["metadata"]["namespace"].as_str().unwrap_or("")
    );
    assert!(strings(&server["spec"]["dnsNames"]).contains(&host.as_str()));
    // The readiness probe reads /ready on the metrics port.
    let probe = &container(coordinator)["readinessProbe"];
    assert_eq!(probe["httpGet"]["path"], "/ready");
    assert_eq!(probe["httpGet"]["port"], "metrics");
    assert!(
        probe.get("grpc").is_none(),
        "the kubelet's gRPC probe speaks plaintext"
    );

    // The controller presents its certificate.
    let controller = named(&docs, "Deployment", "cutover-controller");
    let issued = named(&docs, "Certificate", "cutover-controller");
    let mount = secret_mount(
        controller,
        issued["spec"]["secretName"].as_str().unwrap_or(""),
    );
    let env = container(controller)["env"].as_array().context("env")?;
    for name in ["CUTOVER_TLS_CA", "CUTOVER_TLS_CERT", "CUTOVER_TLS_KEY"] {
        let value = env
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .with_context(|| format!("{name} missing"))?;
        assert!(value.starts_with(mount), "{name} is under {mount}");
    }

    // The policy is valid, mounted where --policy points, and grants the
    // controller's identity what the controller does; the example gate
    // identity registers its colour only.
    let config_map = named(&docs, "ConfigMap", "cutover-policy");
    let text = config_map["data"]["policy.yaml"]
        .as_str()
        .context("policy.yaml")?;
    let policy = Policy::parse(text)?;
    let volume = pod(coordinator)["volumes"]
        .as_array()
        .and_then(|v| {
            v.iter()
                .find(|v| v["configMap"]["name"] == "cutover-policy")
        })
        .context("the policy is not a volume")?;
    let policy_mount = container(coordinator)["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == volume["name"]))
        .and_then(|m| m["mountPath"].as_str())
        .context("the policy is not mounted")?;
    assert_eq!(flag("policy"), format!("{policy_mount}/policy.yaml"));
    let controller_identity = strings(&issued["spec"]["uris"])[0];
    for action in [Action::View, Action::Operate, Action::Administer] {
        assert!(
            policy
                .check(Some(controller_identity), action, "any-pipeline")
                .is_ok()
        );
    }
    let gate = named(&docs, "Certificate", "gate-orders-blue");
    let gate_identity = strings(&gate["spec"]["uris"])[0];
    assert!(
        policy
            .check(
                Some(gate_identity),
                Action::RegisterGate(Colour::Blue),
                "orders"
            )
            .is_ok()
    );
    assert!(
        policy
            .check(
                Some(gate_identity),
                Action::RegisterGate(Colour::Green),
                "orders"
            )
            .is_err()
    );
    assert!(
        policy
            .check(Some(gate_identity), Action::Operate, "orders")
            .is_err()
    );
    Ok(())
}
