//! `cutover import -f official.yaml`: the official operator's
//! FlinkBlueGreenDeployment as cutover's, printed as YAML for `kubectl
//! apply -f -`, with what has no equivalent as comments on top.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context;
use cutover_crds::import::{ImportOptions, import_official};

/// Flags of `cutover import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The official resource (YAML or JSON; `-` reads standard input).
    #[arg(short = 'f', long = "filename")]
    pub file: String,
    /// `spec.configuration.coordinator` of the result (default: cutover's).
    #[arg(long)]
    pub coordinator: Option<String>,
    /// The savepoint BLUE's first start resumes from: the one the official
    /// resource's active child was suspended with.
    #[arg(long)]
    pub initial_savepoint: Option<String>,
}

impl ImportArgs {
    /// Prints the converted resource.
    pub fn run(&self) -> anyhow::Result<ExitCode> {
        let text = if self.file == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        } else {
            std::fs::read_to_string(&self.file).with_context(|| format!("reading {}", self.file))?
        };
        let official: serde_json::Value = serde_yaml::from_str(&text)
            .with_context(|| format!("{} is not YAML or JSON", self.file))?;
        let imported = import_official(
            &official,
            &ImportOptions {
                coordinator: self.coordinator.clone(),
                initial_savepoint: self.initial_savepoint.clone(),
            },
        )?;
        let mut out = String::from(
            "# Imported by `cutover import` from the official FlinkBlueGreenDeployment.\n",
        );
        for note in &imported.notes {
            out.push_str(&format!("# note: {note}\n"));
        }
        out.push_str(&serde_yaml::to_string(&imported.resource)?);
        print!("{out}");
        Ok(ExitCode::SUCCESS)
    }
}
