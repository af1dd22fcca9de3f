//! Discovery documents of the fake API server (`/version`, `/api`, `/apis`,
//! `/apis/GROUP/VERSION`), in their legacy JSON form, so that `kubectl`
//! itself can address the resources the controller works on.

use serde_json::{Value, json};

/// One resource kind the server announces.
struct Announced {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
}

const ANNOUNCED: [Announced; 2] = [
    Announced {
        group: "cutover.dev",
        version: "v1alpha1",
        plural: "flinkbluegreendeployments",
        kind: "FlinkBlueGreenDeployment",
        short_names: &["fbgd"],
    },
    Announced {
        group: "flink.apache.org",
        version: "v1beta1",
        plural: "flinkdeployments",
        kind: "FlinkDeployment",
        short_names: &["flinkdep"],
    },
];

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "get",
    "list",
    "patch",
    "update",
    "watch",
    "deletecollection",
];

/// The discovery document at `path`, if `path` is one.
pub(super) fn document(path: &str) -> Option<Value> {
    match path {
        "/version" => Some(json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake"})),
        "/api" => Some(
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        "/api/v1" => Some(resource_list(
            "v1",
            &[("configmaps", "ConfigMap"), ("events", "Event")],
        )),
        "/apis" => Some(group_list()),
        _ => {
            let rest = path.strip_prefix("/apis/")?;
            let (group, version) = rest.split_once('/')?;
            let resources: Vec<Value> = ANNOUNCED
                .iter()
                .filter(|a| a.group == group && a.version == version)
                .map(resource)
                .collect();
            if resources.is_empty() {
                return None;
            }
            Some(json!({
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": format!("{group}/{version}"),
                "resources": resources,
            }))
        }
    }
}

fn resource(a: &Announced) -> Value {
    json!({
        "name": a.plural,
        "singularName": a.kind.to_lowercase(),
        "namespaced": true,
        "kind": a.kind,
        "verbs": VERBS,
        "shortNames": a.short_names,
    })
}

fn resource_list(group_version: &str, resources: &[(&str, &str)]) -> Value {
    let resources: Vec<Value> = resources
        .iter()
        .map(|(plural, kind)| {
            json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": true, "kind": kind, "verbs": VERBS})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn group_list() -> Value {
    let groups: Vec<Value> = ANNOUNCED
        .iter()
        .map(|a| {
            let version =
                json!({"groupVersion": format!("{}/{}", a.group, a.version), "version": a.version});
            json!({"name": a.group, "versions": [version.clone()], "preferredVersion": version})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}
