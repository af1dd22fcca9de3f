//! `kubectl cutover status NAME`: the resource, its children and the
//! coordinator's live figures, for people.

use std::fmt::Write as _;
use std::process::ExitCode;

use cutover_controller::JobHealth;
use cutover_controller::child::{child_name, observe_child};
use cutover_core::Colour;

use super::Target;
use super::resource::{Found, find, live_status};
use crate::tls_args::TlsArgs;

pub(super) async fn run(
    target: &Target,
    coordinator: Option<&str>,
    tls: &TlsArgs,
) -> anyhow::Result<ExitCode> {
    let found = find(target).await?;
    let live = live_status(&found, coordinator, &tls.client_tls()).await;
    print!("{}", describe(&found, &live));
    Ok(ExitCode::SUCCESS)
}

fn health(job: &JobHealth) -> String {
    match job {
        JobHealth::Starting => "starting".into(),
        JobHealth::Running => "running".into(),
        JobHealth::Suspended => "suspended".into(),
        JobHealth::Failed(reason) => format!("FAILED: {reason}"),
    }
}

/// The status text.
fn describe(found: &Found, live: &Result<cutover_core::PipelineStatus, String>) -> String {
    let r = &found.resource;
    let name = r.metadata.name.as_deref().unwrap_or("?");
    let mut out = String::new();
    let status = r.status.clone().unwrap_or_default();
    let generation = r.metadata.generation.unwrap_or(0);
    let _ = writeln!(
        out,
        "FlinkBlueGreenDeployment {}/{name}: {:?}{}",
        found.namespace,
        status.state,
        if status.observed_generation == Some(generation) {
            String::new()
        } else {
            format!(" (generation {generation} not yet seen by the controller)")
        }
    );
    for condition in &status.conditions {
        if condition.status == "True" || condition.type_ == "Ready" {
            let _ = writeln!(
                out,
                "  {}: {} ({}){}",
                condition.type_,
                condition.status,
                condition.reason,
                if condition.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", condition.message)
                }
            );
        }
    }
    if let Some(error) = &status.last_error {
        let _ = writeln!(out, "  last error: {error}");
    }
    for colour in Colour::ALL {
        let child = child_name(name, colour);
        match found.child(colour).map(observe_child) {
            Some(c) => {
                let role = if Some(colour.to_string()) == status.active_colour {
                    ", active"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  {child}: {}{role}, template {}{}",
                    health(&c.job),
                    c.template_hash,
                    c.savepoint
                        .map(|s| format!(", savepoint {s}"))
                        .unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(out, "  {child}: none");
            }
        }
    }
    match live {
        Ok(s) => {
            let _ = writeln!(out, "coordinator (live):");
            for line in crate::control::describe(s).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        Err(reason) => {
            let g = status.gates;
            let _ = writeln!(
                out,
                "coordinator not reachable from here ({reason}); as the controller last saw it: epoch {}, phase {}, BLUE gates {}/{} acked, GREEN gates {}/{} acked",
                status.epoch.map_or_else(|| "-".into(), |e| e.to_string()),
                status.transition_phase.as_deref().unwrap_or("none"),
                g.blue.acked,
                g.blue.expected,
                g.green.acked,
                g.green.expected
            );
        }
    }
    out
}
