//! `cutover list | status | schedule | abort | promote | complete |
//! forget-operator`: the control API from the command line, against a
//! running coordinator.

use std::process::ExitCode;

use anyhow::{Context, bail};
use cutover_proto::convert::{colour_from, phase_from};
use cutover_proto::v1;
use cutover_proto::v1::control_service_client::ControlServiceClient;
use cutover_proto::v1::schedule_transition_request::At;
use tonic::transport::Channel;

/// Where the coordinator is, and which pipeline.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The pipeline.
    pub pipeline: String,
    /// Coordinator address.
    #[arg(
        long,
        env = "CUTOVER_ENDPOINT",
        default_value = "http://127.0.0.1:7700"
    )]
    pub endpoint: String,
    /// Print the resulting status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A colour on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ColourArg {
    /// BLUE.
    Blue,
    /// GREEN.
    Green,
}

/// Flags of `cutover schedule`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScheduleArgs {
    #[command(flatten)]
    target: Target,
    /// The colour taking over.
    #[arg(long = "to", value_enum)]
    to: ColourArg,
    /// Cutover key (event time, ms); EARLIEST (the persisted horizon) when
    /// absent.
    #[arg(long, allow_hyphen_values = true)]
    at: Option<i64>,
    /// Decide on watermarks instead of record timestamps.
    #[arg(long)]
    watermark_mode: bool,
    /// How late a record may be below the cutover and still go to its owner.
    #[arg(long, default_value_t = 0)]
    allowed_lateness: u64,
    /// Hold the horizon at the cutover until `cutover promote`.
    #[arg(long)]
    manual: bool,
}

/// Flags of `cutover promote`.
#[derive(clap::Args, Debug, Clone)]
pub struct PromoteArgs {
    #[command(flatten)]
    target: Target,
    /// The name is a FlinkBlueGreenDeployment's (in the cluster of the
    /// kubeconfig or in-cluster configuration), not a pipeline's.
    #[arg(long)]
    resource: bool,
    /// Namespace of the FlinkBlueGreenDeployment (default: the
    /// configuration's).
    #[arg(long, short = 'n', requires = "resource")]
    namespace: Option<String>,
}

/// Flags of `cutover forget-operator`.
#[derive(clap::Args, Debug, Clone)]
pub struct ForgetArgs {
    #[command(flatten)]
    target: Target,
    /// Colour of the operator's job.
    #[arg(long, value_enum)]
    colour: ColourArg,
    /// The gate operator's uid.
    #[arg(long)]
    uid: String,
}

/// Flags of `cutover list`.
#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    /// Coordinator address.
    #[arg(
        long,
        env = "CUTOVER_ENDPOINT",
        default_value = "http://127.0.0.1:7700"
    )]
    pub endpoint: String,
}

/// The control commands.
#[derive(clap::Subcommand, Debug)]
pub enum ControlCommand {
    /// List the pipelines, and those whose stored state cannot be read.
    List(ListArgs),
    /// Print a pipeline's plan, transition and gates.
    Status(Target),
    /// Schedule a transition to a colour.
    Schedule(ScheduleArgs),
    /// Abort the pending transition (before the horizon passes its cutover).
    Abort(Target),
    /// Let a transition scheduled with `--manual` take effect; with
    /// `--resource`, ask the controller to promote a FlinkBlueGreenDeployment
    /// (sets its `cutover.dev/promote` annotation).
    Promote(PromoteArgs),
    /// Mark the transition complete once the old job is stopped.
    Complete(Target),
    /// Forget a recorded gate operator that will never come back (it keeps
    /// DRAINED from coming); refused while any of its gates is connected.
    ForgetOperator(ForgetArgs),
}

impl ControlCommand {
    /// Sends the request and prints the pipeline's status.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let target = match &self {
            ControlCommand::List(l) => return list(&l.endpoint).await,
            ControlCommand::Status(t) | ControlCommand::Abort(t) | ControlCommand::Complete(t) => {
                t.clone()
            }
            ControlCommand::ForgetOperator(f) => f.target.clone(),
            ControlCommand::Promote(p) if p.resource => {
                return annotate_for_promotion(&p.target.pipeline, p.namespace.as_deref()).await;
            }
            ControlCommand::Promote(p) => p.target.clone(),
            ControlCommand::Schedule(s) => s.target.clone(),
        };
        let mut control = ControlServiceClient::connect(target.endpoint.clone())
            .await
            .with_context(|| format!("connecting to {}", target.endpoint))?;
        let status = self.send(&mut control, &target.pipeline).await?;
        if target.json {
            println!("{}", status_json(&status));
        } else {
            print!("{}", describe(&status));
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn send(
        &self,
        control: &mut ControlServiceClient<Channel>,
        pipeline: &str,
    ) -> anyhow::Result<v1::PipelineStatus> {
        let pipeline = pipeline.to_string();
        let reply = match self {
            ControlCommand::List(_) => bail!("list names no pipeline"),
            ControlCommand::Status(_) => {
                control
                    .get_pipeline(v1::GetPipelineRequest { pipeline })
                    .await
            }
            ControlCommand::Schedule(s) => {
                let target = colour_arg(s.to);
                let mode = if s.watermark_mode {
                    v1::DecisionMode::Watermark
                } else {
                    v1::DecisionMode::EventTime
                };
                control
                    .schedule_transition(v1::ScheduleTransitionRequest {
                        pipeline,
                        target: target as i32,
                        at: Some(s.at.map_or(At::Earliest(true), At::Key)),
                        mode: mode as i32,
                        allowed_lateness: s.allowed_lateness,
                        auto_promote: !s.manual,
                    })
                    .await
            }
            ControlCommand::Abort(_) => {
                control
                    .abort_transition(v1::AbortTransitionRequest { pipeline })
                    .await
            }
            ControlCommand::Promote(_) => control.promote(v1::PromoteRequest { pipeline }).await,
            ControlCommand::Complete(_) => {
                control
                    .complete_transition(v1::CompleteTransitionRequest { pipeline })
                    .await
            }
            ControlCommand::ForgetOperator(f) => {
                control
                    .forget_operator(v1::ForgetOperatorRequest {
                        pipeline,
                        colour: colour_arg(f.colour) as i32,
                        gate_uid: f.uid.clone(),
                    })
                    .await
            }
        };
        match reply {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => bail!("{:?}: {}", status.code(), status.message()),
        }
    }
}

fn colour_arg(colour: ColourArg) -> v1::Colour {
    match colour {
        ColourArg::Blue => v1::Colour::Blue,
        ColourArg::Green => v1::Colour::Green,
    }
}

/// Prints every pipeline in one line, and every broken one with its reason.
async fn list(endpoint: &str) -> anyhow::Result<ExitCode> {
    let mut control = ControlServiceClient::connect(endpoint.to_string())
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    let reply = match control.list_pipelines(v1::ListPipelinesRequest {}).await {
        Ok(reply) => reply.into_inner(),
        Err(status) => bail!("{:?}: {}", status.code(), status.message()),
    };
    for s in &reply.pipelines {
        let plan = s.plan.clone().unwrap_or_default();
        println!(
            "{}\tepoch {}\tactive {}\t{}",
            s.pipeline,
            plan.epoch,
            colour_name(s.active),
            phase_name(s.phase)
        );
    }
    for b in &reply.broken {
        println!("{}\tBROKEN at {}: {}", b.pipeline, b.location, b.reason);
    }
    Ok(if reply.broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Sets the promote annotation on FlinkBlueGreenDeployment `name`; the
/// controller promotes the waiting transition and removes it.
async fn annotate_for_promotion(name: &str, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    use cutover_controller::status_map::PROMOTE_ANNOTATION;
    use cutover_crds::FlinkBlueGreenDeployment;
    use kube::api::{Api, Patch, PatchParams};
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster or kubeconfig)")?;
    let resources: Api<FlinkBlueGreenDeployment> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let patch = serde_json::json!({"metadata": {"annotations": {PROMOTE_ANNOTATION: "true"}}});
    resources
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotating FlinkBlueGreenDeployment {name}"))?;
    println!("asked the controller to promote {name} ({PROMOTE_ANNOTATION})");
    Ok(ExitCode::SUCCESS)
}

/// A colour field's name (the core type's), `?` if it is not one.
fn colour_name(raw: i32) -> String {
    colour_from("colour", raw).map_or_else(|_| "?".into(), |c| c.to_string())
}

/// A phase field's name (the core type's), `none` when unset.
fn phase_name(raw: i32) -> String {
    phase_from(raw).map_or_else(|| "none".into(), |p| p.to_string())
}

fn key(k: i64) -> String {
    match k {
        i64::MIN => "-inf".into(),
        i64::MAX => "+inf".into(),
        k => k.to_string(),
    }
}

/// A pipeline's status for people.
pub fn describe(s: &v1::PipelineStatus) -> String {
    let mut out = String::new();
    let plan = s.plan.clone().unwrap_or_default();
    out.push_str(&format!(
        "pipeline {}: epoch {}, active {}, horizon {}\n",
        s.pipeline,
        plan.epoch,
        colour_name(s.active),
        key(plan.horizon)
    ));
    let floor = |f: Option<i64>| key(f.unwrap_or(i64::MIN));
    if plan.blue_retired_below.is_some() || plan.green_retired_below.is_some() {
        out.push_str(&format!(
            "  retired below: BLUE {}, GREEN {}\n",
            floor(plan.blue_retired_below),
            floor(plan.green_retired_below)
        ));
    }
    for segment in &plan.segments {
        out.push_str(&format!(
            "  from {:>20}  {}\n",
            key(segment.start),
            colour_name(segment.owner)
        ));
    }
    match &s.transition {
        Some(t) => out.push_str(&format!(
            "  transition {} -> {} at {}: {}{}\n",
            colour_name(t.from),
            colour_name(t.to),
            key(t.at),
            phase_name(s.phase),
            if !t.auto_promote && !t.promoted {
                " (waiting for promote)"
            } else {
                ""
            }
        )),
        None => out.push_str("  no transition\n"),
    }
    for (name, gates) in [("BLUE", &s.blue), ("GREEN", &s.green)] {
        let g = gates.unwrap_or_default();
        out.push_str(&format!(
            "  {name:<5} gates: {} expected, {} connected, {} acked; records: {} emitted, {} dropped, {} held; watermarks {} to {}\n",
            g.expected,
            g.connected,
            g.acked,
            g.emitted,
            g.dropped,
            g.held,
            key(g.lowest_watermark),
            key(g.highest_watermark)
        ));
    }
    out
}

fn status_json(s: &v1::PipelineStatus) -> serde_json::Value {
    let plan = s.plan.clone().unwrap_or_default();
    let gates = |g: &Option<v1::ColourGates>| {
        let g = g.unwrap_or_default();
        let watermark = |w: i64| (w != i64::MIN).then_some(w);
        serde_json::json!({
            "expected": g.expected,
            "connected": g.connected,
            "acked": g.acked,
            "emitted": g.emitted,
            "dropped": g.dropped,
            "held": g.held,
            "lowest_watermark": watermark(g.lowest_watermark),
            "highest_watermark": watermark(g.highest_watermark),
        })
    };
    serde_json::json!({
        "pipeline": s.pipeline,
        "epoch": plan.epoch,
        "active": colour_name(s.active),
        "horizon": plan.horizon,
        "retired_below": {
            "blue": plan.blue_retired_below,
            "green": plan.green_retired_below,
        },
        "incarnation": format!("{:016x}", plan.incarnation),
        "phase": phase_name(s.phase),
        "transition": s.transition.as_ref().map(|t| serde_json::json!({
            "from": colour_name(t.from),
            "to": colour_name(t.to),
            "at": t.at,
            "auto_promote": t.auto_promote,
            "promoted": t.promoted,
        })),
        "blue": gates(&s.blue),
        "green": gates(&s.green),
    })
}
