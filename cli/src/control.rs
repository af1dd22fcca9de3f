//! `cutover list | status | schedule | abort | promote | complete |
//! forget-operator`: the control API from the command line, against a
//! running coordinator.

use std::process::ExitCode;

use anyhow::Context;
use cutover_client::{ClientTls, ControlClient};

use crate::tls_args::TlsArgs;
use cutover_core::{
    Colour, CutoverAt, Key, Mode, Phase, PipelineName, PipelineStatus, ScheduleRequest,
};

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
    /// How to reach an `https://` coordinator.
    #[command(flatten)]
    pub tls: TlsArgs,
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
    /// How to reach an `https://` coordinator.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Flags of `cutover status`.
#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// The pipeline and its coordinator.
    #[command(flatten)]
    pub target: Target,
    /// Follow the pipeline: print its status again on every change (the
    /// coordinator's WatchPipeline stream), until interrupted.
    #[arg(long)]
    pub watch: bool,
}

/// The control commands.
#[derive(clap::Subcommand, Debug)]
pub enum ControlCommand {
    /// List the pipelines, and those whose stored state cannot be read.
    List(ListArgs),
    /// Print a pipeline's plan, transition and gates (`--watch`: again on
    /// every change).
    Status(StatusArgs),
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
            ControlCommand::List(l) => return list(&l.endpoint, &l.tls.client_tls()).await,
            ControlCommand::Status(s) if s.watch => {
                return crate::status_watch::watch(&s.target).await;
            }
            ControlCommand::Status(StatusArgs { target, .. })
            | ControlCommand::Abort(target)
            | ControlCommand::Complete(target) => target.clone(),
            ControlCommand::ForgetOperator(f) => f.target.clone(),
            ControlCommand::Promote(p) if p.resource => {
                return annotate_for_promotion(&p.target.pipeline, p.namespace.as_deref()).await;
            }
            ControlCommand::Promote(p) => p.target.clone(),
            ControlCommand::Schedule(s) => s.target.clone(),
        };
        let pipeline = PipelineName::new(target.pipeline.as_str())?;
        let mut control =
            ControlClient::connect_with(target.endpoint.clone(), &target.tls.client_tls())
                .await
                .with_context(|| format!("connecting to {}", target.endpoint))?;
        let status = self.send(&mut control, &pipeline).await?;
        if target.json {
            println!("{}", cutover_coordinator::status_json::status_json(&status));
        } else {
            print!("{}", describe(&status));
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn send(
        &self,
        control: &mut ControlClient,
        pipeline: &PipelineName,
    ) -> anyhow::Result<PipelineStatus> {
        Ok(match self {
            ControlCommand::List(_) => anyhow::bail!("list names no pipeline"),
            ControlCommand::Status(_) => control.get(pipeline).await?,
            ControlCommand::Schedule(s) => {
                let request = ScheduleRequest {
                    target: s.to.into(),
                    at: s.at.map_or(CutoverAt::Earliest, |k| CutoverAt::Key(Key(k))),
                    mode: if s.watermark_mode {
                        Mode::Watermark
                    } else {
                        Mode::EventTime
                    },
                    allowed_lateness: s.allowed_lateness,
                    auto_promote: !s.manual,
                };
                control.schedule(pipeline, request).await?
            }
            ControlCommand::Abort(_) => control.abort(pipeline).await?,
            ControlCommand::Promote(_) => control.promote(pipeline).await?,
            ControlCommand::Complete(_) => control.complete(pipeline).await?,
            ControlCommand::ForgetOperator(f) => {
                control
                    .forget_operator(pipeline, f.colour.into(), &f.uid)
                    .await?
            }
        })
    }
}

impl From<ColourArg> for Colour {
    fn from(colour: ColourArg) -> Colour {
        match colour {
            ColourArg::Blue => Colour::Blue,
            ColourArg::Green => Colour::Green,
        }
    }
}

/// Prints every pipeline in one line, and every broken one with its reason.
async fn list(endpoint: &str, tls: &ClientTls) -> anyhow::Result<ExitCode> {
    let mut control = ControlClient::connect_with(endpoint, tls)
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    let listing = control.list().await?;
    for s in &listing.pipelines {
        let phase = s.phase.map_or_else(|| "none".into(), |p| p.to_string());
        println!(
            "{}\tepoch {}\tactive {}\t{phase}",
            s.name, s.plan.epoch, s.active
        );
    }
    for b in &listing.broken {
        println!("{}\tBROKEN at {}: {}", b.pipeline, b.location, b.reason);
    }
    Ok(if listing.broken.is_empty() {
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

/// A pipeline's status for people.
pub fn describe(s: &PipelineStatus) -> String {
    let mut out = String::new();
    let plan = &s.plan;
    // `active` owns the end of the timeline: with a transition not yet
    // irrevocable that is its target, while the other colour still emits
    // every key below the cutover.
    let active = match (&s.transition, s.phase) {
        (Some(t), Some(Phase::Scheduled)) => format!(
            "{} from key {} ({} below it until the cutover)",
            s.active, t.at, t.from
        ),
        _ => s.active.to_string(),
    };
    out.push_str(&format!(
        "pipeline {}: epoch {}, active {active}, horizon {}\n",
        s.name, plan.epoch, plan.horizon
    ));
    if plan.retired.lowest() > Key::MIN {
        out.push_str(&format!(
            "  retired below: BLUE {}, GREEN {}\n",
            plan.retired.blue, plan.retired.green
        ));
    }
    for segment in plan.timeline.segments() {
        out.push_str(&format!(
            "  from {:>20}  {}\n",
            segment.start.to_string(),
            segment.owner
        ));
    }
    match &s.transition {
        Some(t) => out.push_str(&format!(
            "  transition {} -> {} at {}: {}{}\n",
            t.from,
            t.to,
            t.at,
            s.phase.map_or_else(|| "none".into(), |p| p.to_string()),
            if t.horizon_cap().is_some() {
                " (waiting for promote)"
            } else {
                ""
            }
        )),
        None => out.push_str("  no transition\n"),
    }
    for colour in Colour::ALL {
        let g = s.gates(colour);
        out.push_str(&format!(
            "  {:<5} gates: {} expected, {} connected, {} acked; records: {} emitted, {} dropped, {} held; watermarks {} to {}{}\n",
            colour.to_string(),
            g.expected,
            g.connected,
            g.acked,
            g.emitted,
            g.dropped,
            g.held,
            g.lowest_watermark,
            g.highest_watermark,
            g.lowest_checkpointed
                .map(|k| format!(", checkpointed from {k}"))
                .unwrap_or_default()
        ));
    }
    for c in &s.serving {
        let renewed = match (c.answering, c.renewed_ms_ago) {
            (true, _) => "answering".to_string(),
            (false, Some(ms)) => format!("renewed {ms} ms ago"),
            (false, None) => "never seen renewing".to_string(),
        };
        out.push_str(&format!(
            "  coordinator {}: serves {} BLUE and {} GREEN gates; {}{}\n",
            c.coordinator,
            c.blue,
            c.green,
            renewed,
            if c.live {
                ""
            } else {
                " (not live: its report does not count)"
            }
        ));
    }
    out
}
