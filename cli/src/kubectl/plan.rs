//! `kubectl cutover plan NAME -f new.yaml`: the controller's steps for a
//! spec change, printed; nothing is written anywhere.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context;
use cutover_controller::plan::{ChangePlan, LiveFigures, plan_change};
use cutover_core::Colour;
use cutover_crds::FlinkBlueGreenDeploymentSpec;
use serde_json::Value;

use super::Target;
use super::resource::{find, live_status};
use crate::tls_args::TlsArgs;

/// The spec in `text`: a whole FlinkBlueGreenDeployment or its spec.
fn read_spec(text: &str) -> anyhow::Result<FlinkBlueGreenDeploymentSpec> {
    let value: Value = serde_yaml::from_str(text).context("not YAML or JSON")?;
    let spec = if value.get("spec").is_some() {
        value["spec"].clone()
    } else {
        value
    };
    serde_json::from_value(spec).context("not a FlinkBlueGreenDeployment spec")
}

pub(super) async fn run(
    target: &Target,
    file: &str,
    coordinator: Option<&str>,
    json: bool,
    tls: &TlsArgs,
) -> anyhow::Result<ExitCode> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
    };
    let next = read_spec(&text).with_context(|| format!("reading {file}"))?;
    let found = find(target).await?;
    let live = live_status(&found, coordinator, &tls.client_tls()).await;
    let figures = LiveFigures {
        status: live.as_ref().ok().cloned(),
    };
    let plan = plan_change(
        &found.resource,
        &next,
        found.child(Colour::Blue),
        found.child(Colour::Green),
        &figures,
    );
    if json {
        println!("{}", serde_json::to_string(&plan)?);
    } else {
        print!("{}", describe(&target.name, &plan, live.err()));
    }
    Ok(if plan.refused.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn describe(name: &str, plan: &ChangePlan, unreachable: Option<String>) -> String {
    let mut out = String::new();
    if let Some(reason) = &plan.refused {
        out.push_str(&format!("refused: {reason}\nnothing would be done.\n"));
        return out;
    }
    if plan.steps.is_empty() {
        out.push_str(&format!("{name}: no step: nothing would change.\n"));
    } else {
        out.push_str(&format!("{name}: the controller would\n"));
        for (i, step) in plan.steps.iter().enumerate() {
            out.push_str(&format!("{:>3}. {}\n", i + 1, step.what));
        }
        match plan.abortable_until() {
            Some(until) => out.push_str(&format!(
                "abortable (`kubectl cutover abort {name}`) until: {until}\n"
            )),
            None if plan.steps.iter().all(|s| s.abortable) => {
                out.push_str("abortable at every step\n")
            }
            None => out.push_str("not abortable\n"),
        }
    }
    for note in &plan.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if let Some(reason) = unreachable {
        out.push_str(&format!(
            "note: the coordinator was not asked for live figures ({reason})\n"
        ));
    }
    out.push_str("(dry run: nothing was changed)\n");
    out
}
