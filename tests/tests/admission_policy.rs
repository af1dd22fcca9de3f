//! The ValidatingAdmissionPolicy in `deploy/base` (only the controller
//! changes child FlinkDeployments), its CEL expressions evaluated for the
//! requests that matter: the controller may create, change and delete a
//! child; anyone else may update one without touching its spec or labels
//! (the Flink operator's finalizer), and kube-system's garbage collector
//! may delete one; everybody else is refused with a message naming them,
//! also when removing the label that makes a child managed, and when
//! creating a FlinkDeployment that pretends to be one. Unmanaged
//! FlinkDeployments are not matched at all.

use anyhow::Context as _;
use cel_interpreter::{Context, Program, Value as Cel};
use cutover_tests::manifests::{named, render_dir};
use serde_json::{Value, json};

const CONTROLLER: &str = "system:serviceaccount:cutover-system:cutover-controller";

struct Policy {
    match_condition: Program,
    validation: Program,
    message: Program,
    params: Value,
}

impl Policy {
    fn from_base() -> anyhow::Result<Self> {
        let docs = render_dir("base")?;
        let policy = named(&docs, "ValidatingAdmissionPolicy", "cutover-children");
        let binding = named(
            &docs,
            "ValidatingAdmissionPolicyBinding",
            "cutover-children",
        );
        assert_eq!(binding["spec"]["policyName"], "cutover-children");
        assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
        let param = &binding["spec"]["paramRef"];
        let params = named(
            &docs,
            "ConfigMap",
            param["name"].as_str().context("paramRef.name")?,
        );
        assert_eq!(params["metadata"]["namespace"], param["namespace"]);
        let compile = |v: &Value| -> anyhow::Result<Program> {
            let source = v.as_str().context("an expression")?;
            Program::compile(source).map_err(|e| anyhow::anyhow!("{source}: {e}"))
        };
        let spec = &policy["spec"];
        Ok(Policy {
            match_condition: compile(&spec["matchConditions"][0]["expression"])?,
            validation: compile(&spec["validations"][0]["expression"])?,
            message: compile(&spec["validations"][0]["messageExpression"])?,
            params: params.clone(),
        })
    }

    /// `None`: not matched; `Some(Ok)`: admitted; `Some(Err(message))`.
    fn admit(
        &self,
        user: &str,
        operation: &str,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> anyhow::Result<Option<Result<(), String>>> {
        let mut context = Context::default();
        let request = json!({"operation": operation, "userInfo": {"username": user}});
        context.add_variable("request", request)?;
        context.add_variable("object", object.cloned().unwrap_or(Value::Null))?;
        context.add_variable("oldObject", old.cloned().unwrap_or(Value::Null))?;
        context.add_variable("params", self.params.clone())?;
        let run = |program: &Program| {
            program
                .execute(&context)
                .map_err(|e| anyhow::anyhow!("evaluating: {e}"))
        };
        if run(&self.match_condition)? != Cel::Bool(true) {
            return Ok(None);
        }
        if run(&self.validation)? == Cel::Bool(true) {
            return Ok(Some(Ok(())));
        }
        match run(&self.message)? {
            Cel::String(message) => Ok(Some(Err(message.to_string()))),
            other => anyhow::bail!("message is not a string: {other:?}"),
        }
    }
}

/// (user, operation, object, oldObject, admitted if matched).
type Row<'a> = (
    &'a str,
    &'a str,
    Option<&'a Value>,
    Option<&'a Value>,
    Option<bool>,
);

fn child(image: &str) -> Value {
    json!({
        "metadata": {
            "name": "orders-green",
            "labels": {"app.kubernetes.io/managed-by": "cutover", "cutover.dev/colour": "green"},
        },
        "spec": {"image": image, "job": {"jarURI": "local:///orders.jar"}},
    })
}

#[test]
fn only_the_controller_changes_the_children() -> anyhow::Result<()> {
    let policy = Policy::from_base()?;
    let v1 = child("orders:1");
    let v2 = child("orders:2");
    let mut finalized = v1.clone();
    finalized["metadata"]["finalizers"] = json!(["flinkdeployments.flink.apache.org/finalizer"]);
    let mut unlabelled = v1.clone();
    unlabelled["metadata"]["labels"] = json!({"cutover.dev/colour": "green"});
    let mut relabelled = v1.clone();
    relabelled["metadata"]["labels"]["cutover.dev/colour"] = json!("blue");
    let unmanaged =
        json!({"metadata": {"name": "adhoc", "labels": {"team": "a"}}, "spec": {"image": "x"}});
    let unmanaged_v2 =
        json!({"metadata": {"name": "adhoc", "labels": {"team": "a"}}, "spec": {"image": "y"}});
    let operator = "system:serviceaccount:flink:flink-operator";
    let gc = "system:serviceaccount:kube-system:generic-garbage-collector";

    // (user, operation, object, oldObject) -> matched?, admitted?
    let table: [Row; 14] = [
        (CONTROLLER, "CREATE", Some(&v1), None, Some(true)),
        (CONTROLLER, "UPDATE", Some(&v2), Some(&v1), Some(true)),
        (CONTROLLER, "DELETE", None, Some(&v1), Some(true)),
        (operator, "UPDATE", Some(&finalized), Some(&v1), Some(true)),
        (gc, "DELETE", None, Some(&v1), Some(true)),
        ("alice", "UPDATE", Some(&v2), Some(&v1), Some(false)),
        ("alice", "UPDATE", Some(&unlabelled), Some(&v1), Some(false)),
        ("alice", "UPDATE", Some(&relabelled), Some(&v1), Some(false)),
        ("alice", "DELETE", None, Some(&v1), Some(false)),
        ("alice", "CREATE", Some(&v1), None, Some(false)),
        (operator, "UPDATE", Some(&v2), Some(&v1), Some(false)),
        (
            "system:serviceaccount:cutover-system:cutover-controllerx",
            "UPDATE",
            Some(&v2),
            Some(&v1),
            Some(false),
        ),
        ("alice", "CREATE", Some(&unmanaged), None, None),
        (
            "alice",
            "UPDATE",
            Some(&unmanaged_v2),
            Some(&unmanaged),
            None,
        ),
    ];
    for (user, operation, object, old, expected) in table {
        let row = format!("{user} {operation}");
        let verdict = policy.admit(user, operation, object, old)?;
        assert_eq!(
            verdict.as_ref().map(Result::is_ok),
            expected,
            "{row}: {verdict:?}"
        );
        if let Some(Err(message)) = verdict {
            assert!(message.contains(user), "{row}: {message}");
            assert!(message.contains(operation), "{row}: {message}");
            assert!(
                message.contains("edit the FlinkBlueGreenDeployment"),
                "{message}"
            );
        }
    }
    Ok(())
}

#[test]
fn the_admitted_controller_is_the_one_deploy_runs() -> anyhow::Result<()> {
    let docs = render_dir("base")?;
    let params = named(&docs, "ConfigMap", "cutover-admission");
    let account = named(&docs, "ServiceAccount", "cutover-controller");
    let controller = named(&docs, "Deployment", "cutover-controller");
    assert_eq!(
        controller["spec"]["template"]["spec"]["serviceAccountName"],
        "cutover-controller"
    );
    let expected = format!(
        "system:serviceaccount:{}:{}",
        account["metadata"]["namespace"].as_str().unwrap_or(""),
        account["metadata"]["name"].as_str().unwrap_or("")
    );
    assert_eq!(expected, CONTROLLER);
    assert_eq!(params["data"]["controllers"], CONTROLLER);
    Ok(())
}
