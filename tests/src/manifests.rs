//! Reading the Kubernetes manifests in `deploy/` in tests: YAML documents
//! as JSON values, objects by kind and name, the pod and container of a
//! Deployment, and overlays rendered by `kubectl kustomize`.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// Every document of a multi-document YAML text.
pub fn parse(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .collect()
}

/// The object of `kind` named `name`.
pub fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Whether there is an object of `kind` named `name`.
pub fn has(docs: &[Value], kind: &str, name: &str) -> bool {
    docs.iter()
        .any(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

/// A Deployment's pod spec.
pub fn pod(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

/// A Deployment's first container.
pub fn container(deployment: &Value) -> &Value {
    &pod(deployment)["containers"][0]
}

/// The strings of a JSON array (none if it is not one).
pub fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `deploy/overlays/<overlay>` as `kubectl kustomize` renders it.
pub fn render(overlay: &str) -> anyhow::Result<Vec<Value>> {
    render_dir(&format!("overlays/{overlay}"))
}

/// `deploy/<relative>` as `kubectl kustomize` renders it.
pub fn render_dir(relative: &str) -> anyhow::Result<Vec<Value>> {
    let overlay = relative;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(relative);
    let output = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .context("running kubectl kustomize (kubectl is needed for this test)")?;
    anyhow::ensure!(
        output.status.success(),
        "kubectl kustomize {overlay} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(parse(&String::from_utf8(output.stdout)?))
}

/// The mount path of the volume whose source is `secret` in `deployment`.
pub fn secret_mount<'a>(deployment: &'a Value, secret: &str) -> &'a str {
    let volume = pod(deployment)["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["secret"]["secretName"] == secret))
        .unwrap_or_else(|| panic!("no volume of Secret {secret}"));
    container(deployment)["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == volume["name"]))
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("Secret {secret} is not mounted"))
}

/// Every `--flag[=value]` in `args` is one `cutover <command>` has.
pub fn flags_exist(command: &str, args: &[&str]) -> anyhow::Result<()> {
    let help = std::process::Command::new(crate::process::cutover_binary()?)
        .args([command, "--help"])
        .output()?;
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in args {
        let name = arg.split('=').next().unwrap_or(arg);
        assert!(help.contains(name), "cutover {command} has no {name}");
    }
    Ok(())
}
