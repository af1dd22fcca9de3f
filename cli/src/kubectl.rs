//! `kubectl cutover`: the binary answers as a kubectl plugin (installed as
//! `kubectl-cutover` on the PATH, krew's naming) and as `cutover kubectl`.
//! It works on FlinkBlueGreenDeployments through the Kubernetes API
//! (kubeconfig or in-cluster), and asks the coordinator the resource names
//! for live figures where it can reach it.

mod actions;
mod plan;
mod resource;
mod status;

use std::process::ExitCode;

use clap::Subcommand;

use crate::tls_args::TlsArgs;

/// Where the resource is.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The FlinkBlueGreenDeployment.
    pub name: String,
    /// Its namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// The plugin's commands.
#[derive(Subcommand, Debug)]
pub enum KubectlCommand {
    /// The resource's state, colours, children, transition and conditions,
    /// and the coordinator's live figures when it can be reached.
    Status {
        /// The resource.
        #[command(flatten)]
        target: Target,
        /// The coordinator to ask instead of the one the resource names
        /// (e.g. through `kubectl port-forward`).
        #[arg(long)]
        coordinator: Option<String>,
        /// How to reach an `https://` coordinator.
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Promote a transition waiting for a promotion (`autoPromote: false`).
    Promote {
        /// The resource.
        #[command(flatten)]
        target: Target,
    },
    /// Abort the running transition while it is still revocable: the new
    /// colour is deleted, the active one keeps emitting, and the new
    /// template is not tried again until it changes.
    Abort {
        /// The resource.
        #[command(flatten)]
        target: Target,
    },
    /// Go back to the template the previous colour ran (while it is kept,
    /// within the deletion delay), through a regular transition; a
    /// transition still revocable is aborted instead.
    Rollback {
        /// The resource.
        #[command(flatten)]
        target: Target,
    },
    /// What the controller would do if the resource's spec became the one
    /// in FILE, step by step: a dry run that changes nothing.
    Plan {
        /// The resource.
        #[command(flatten)]
        target: Target,
        /// A FlinkBlueGreenDeployment (or its spec) in YAML or JSON; `-`
        /// reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// The coordinator to ask for the live figures instead of the one
        /// the resource names.
        #[arg(long)]
        coordinator: Option<String>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// How to reach an `https://` coordinator.
        #[command(flatten)]
        tls: TlsArgs,
    },
}

impl KubectlCommand {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            KubectlCommand::Status {
                target,
                coordinator,
                tls,
            } => status::run(&target, coordinator.as_deref(), &tls).await,
            KubectlCommand::Promote { target } => actions::promote(&target).await,
            KubectlCommand::Abort { target } => actions::abort(&target).await,
            KubectlCommand::Rollback { target } => actions::rollback(&target).await,
            KubectlCommand::Plan {
                target,
                file,
                coordinator,
                json,
                tls,
            } => plan::run(&target, &file, coordinator.as_deref(), json, &tls).await,
        }
    }
}
