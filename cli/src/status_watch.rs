//! `cutover status NAME --watch`: the pipeline's status, printed again on
//! every change the coordinator streams (WatchPipeline), until interrupted
//! or the pipeline is deleted. On a terminal each print replaces the last;
//! otherwise (a pipe, a file) they follow each other, each under a line
//! with the time, and `--json` prints one object per line.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context;
use cutover_client::ControlClient;
use cutover_core::PipelineName;
use futures::StreamExt as _;

use crate::control::{Target, describe};

/// Follows `target`'s pipeline.
pub async fn watch(target: &Target) -> anyhow::Result<ExitCode> {
    let pipeline = PipelineName::new(target.pipeline.as_str())?;
    let mut control =
        ControlClient::connect_with(target.endpoint.clone(), &target.tls.client_tls())
            .await
            .with_context(|| format!("connecting to {}", target.endpoint))?;
    let mut updates = control.watch(&pipeline).await?;
    let terminal = std::io::stdout().is_terminal() && !target.json;
    while let Some(update) = updates.next().await {
        let status = update?;
        if target.json {
            println!("{}", cutover_coordinator::status_json::status_json(&status));
            continue;
        }
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        if terminal {
            // Clear the screen and go home, then the newest status.
            print!("\x1b[2J\x1b[H");
        }
        print!("--- {now}\n{}", describe(&status));
    }
    Ok(ExitCode::SUCCESS)
}
