//! The `cutover` command: `serve` runs a coordinator, `demo` runs a whole
//! Blue/Green cutover on this machine and checks it, `bench` measures.

mod controller;
mod logging;
mod serve;

use cutover_cli::{bench, control, demo, import, kubectl};

use clap::{Parser, Subcommand};

/// Zero-downtime Blue/Green cutovers for Apache Flink pipelines.
#[derive(Parser)]
#[command(name = "cutover", version, about)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "CUTOVER_LOG_FORMAT",
        default_value = "plain"
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a coordinator: gate and control gRPC services, health, reflection
    /// and Prometheus metrics.
    Serve(Box<serve::ServeArgs>),
    /// Run a cutover between two simulated jobs against an embedded
    /// coordinator and print what each colour emitted.
    Demo(demo::DemoArgs),
    /// Control a pipeline on a running coordinator.
    #[command(flatten)]
    Control(control::ControlCommand),
    /// FlinkBlueGreenDeployments through the Kubernetes API, as the kubectl
    /// plugin does (`kubectl cutover ...` once the binary is on the PATH as
    /// `kubectl-cutover`).
    #[command(subcommand)]
    Kubectl(kubectl::KubectlCommand),
    /// Convert the Apache Flink Kubernetes Operator's FlinkBlueGreenDeployment
    /// (flink.apache.org/v1beta1) into cutover's, printed as YAML with notes
    /// on what has no equivalent.
    Import(import::ImportArgs),
    /// Run the FlinkBlueGreenDeployment controller against the cluster's
    /// API server.
    Controller(controller::ControllerArgs),
    /// Print the CustomResourceDefinition of FlinkBlueGreenDeployment (YAML,
    /// for `kubectl apply -f -`).
    Crds,
    /// Write a throw-away CA, a server certificate for localhost and
    /// 127.0.0.1, and a client certificate into a folder, for trying mutual
    /// TLS on one machine (`ca.pem`, `server.pem`, `server-key.pem`,
    /// `client.pem`, `client-key.pem`). Not for production: use your
    /// cluster's CA (deploy/overlays/tls uses cert-manager).
    DevPki {
        /// The folder to write.
        dir: std::path::PathBuf,
    },
    /// One colour of the demo's simulated job as a process of its own
    /// (tests place jobs on hosts of their own).
    #[command(hide = true)]
    Job(demo::job_process::JobArgs),
    /// Load generators measuring a coordinator from outside.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time from a plan change until every gate holds it and has acked it.
    Fanout(bench::fanout::FanoutArgs),
    /// Coordinator resident memory per idle gate and per session.
    Memory(bench::memory::MemoryArgs),
    /// Hostile clients (idle connections, unfinished TLS handshakes,
    /// unread sessions, a huge message): memory and served-gate latency.
    Exhaustion(bench::exhaustion::ExhaustionArgs),
    /// Kill the coordinator under its gates and restart it: time until
    /// every gate is back at the current epoch.
    Reconnect(bench::reconnect::ReconnectArgs),
    /// Store writes of one scripted run per backend and number of gates.
    Writes(bench::writes::WritesArgs),
    /// One client process of `bench fanout` (started by it).
    #[command(hide = true)]
    FanoutClient(bench::fanout_client::FanoutClientArgs),
}

/// The command line when the binary runs as the kubectl plugin
/// (`kubectl-cutover`, which kubectl runs for `kubectl cutover ...`).
#[derive(Parser)]
#[command(
    name = "kubectl cutover",
    version,
    about = "Blue/green FlinkBlueGreenDeployments with record-exact cutovers"
)]
struct PluginCli {
    #[command(subcommand)]
    command: kubectl::KubectlCommand,
}

/// Whether the binary was started as the kubectl plugin.
fn as_plugin() -> bool {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|n| n.to_string_lossy().starts_with("kubectl-cutover"))
        })
        .unwrap_or(false)
}

fn main() -> std::process::ExitCode {
    let cli = if as_plugin() {
        Cli {
            log_format: logging::LogFormat::default(),
            command: Command::Kubectl(PluginCli::parse().command),
        }
    } else {
        Cli::parse()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                logging::init(cli.log_format, "info");
                args.run().await
            }
            Command::Controller(args) => {
                logging::init(cli.log_format, "info");
                args.run().await
            }
            Command::Control(command) => {
                logging::init(cli.log_format, "warn");
                command.run().await
            }
            Command::Kubectl(command) => {
                logging::init(cli.log_format, "warn");
                command.run().await
            }
            Command::Import(args) => args.run(),
            Command::Crds => cutover_crds::crd_yaml()
                .map(|yaml| {
                    print!("{yaml}");
                    std::process::ExitCode::SUCCESS
                })
                .map_err(anyhow::Error::from),
            Command::DevPki { dir } => cutover_cli::pki::TestPki::generate()
                .and_then(|pki| Ok(pki.write_to(&dir)?))
                .map(|()| {
                    println!("wrote ca.pem, server.pem, server-key.pem, client.pem, client-key.pem to {}", dir.display());
                    std::process::ExitCode::SUCCESS
                }),
            Command::Demo(args) => {
                logging::init(cli.log_format, "warn");
                args.run().await
            }
            Command::Job(args) => {
                logging::init(cli.log_format, "warn");
                args.run().await
            }
            Command::Bench(BenchCommand::Fanout(args)) => {
                logging::init(cli.log_format, "warn");
                args.run().await
            }
            Command::Bench(BenchCommand::Memory(args)) => {
                logging::init(cli.log_format, "warn");
                args.run().await
            }
            Command::Bench(BenchCommand::Exhaustion(args)) => {
                logging::init(cli.log_format, "warn");
                args.run().await
            }
            Command::Bench(BenchCommand::Reconnect(args)) => {
                logging::init(cli.log_format, "warn");
                args.run().await
            }
            Command::Bench(BenchCommand::Writes(args)) => {
                logging::init(cli.log_format, "warn");
                args.run().await
            }
            Command::Bench(BenchCommand::FanoutClient(args)) => {
                logging::init(cli.log_format, "error");
                args.run().await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
