//! `cutover status | schedule | promote | abort | complete` against a
//! running coordinator: each prints the pipeline's resulting status; a
//! refused request exits non-zero with the coordinator's reason and changes
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use cutover_client::{Client, ClientConfig, Colour};
use cutover_coordinator::store::MemoryStore;
use cutover_core::{Decision, Epoch, Key, PipelineName};
use cutover_tests::process::cutover_binary;
use cutover_tests::*;
use serde_json::Value;

/// Runs `cutover <args> --endpoint E --json`: (success, JSON or error text).
fn cutover(endpoint: &str, args: &[&str]) -> anyhow::Result<(bool, Value, String)> {
    let output = std::process::Command::new(cutover_binary()?)
        .args(args)
        .args(["--endpoint", endpoint, "--json"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Ok((output.status.success(), json, stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_commands_drive_a_pipeline() -> anyhow::Result<()> {
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let endpoint = coordinator.endpoint();
    let client = Client::connect(ClientConfig::new(endpoint.clone()))?;
    let mut gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    let pipeline = PipelineName::new("orders")?;
    tokio::time::timeout(
        Duration::from_secs(10),
        client.wait_for_epoch(&pipeline, Epoch(1)),
    )
    .await?;
    let mut control = coordinator.control().await?;
    wait_for_status(&mut control, "orders", Duration::from_secs(10), |s| {
        s.green.acked == 1
    })
    .await?;
    // A watermark moves the horizon past three records, which are emitted:
    // the status shows the gates' counts and watermarks.
    gate.observe_watermark(Key(25));
    tokio::time::timeout(Duration::from_secs(10), gate.wait_until_decidable(Key(30))).await?;
    for key in [10, 20, 30] {
        assert_eq!(gate.decide(Key(key)), Decision::Emit);
    }
    gate.flush();
    wait_for_status(&mut control, "orders", Duration::from_secs(10), |s| {
        s.green.emitted == 3 && s.green.highest_watermark == Key(25)
    })
    .await?;

    let run = |args: Vec<&'static str>| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || cutover(&endpoint, &args))
    };
    let (ok, status, err) = run(vec!["status", "orders"]).await??;
    assert!(ok, "{err}");
    assert_eq!(status["active"], "GREEN");
    // Epoch 1 created the pipeline, epoch 2 moved the horizon for the watermark.
    assert_eq!(status["epoch"], 2);
    assert_eq!(status["green"]["connected"], 1);
    assert_eq!(status["green"]["emitted"], 3);
    assert_eq!(status["green"]["held"], 0);
    assert_eq!(status["green"]["lowest_watermark"], 25);
    assert_eq!(status["blue"]["lowest_watermark"], Value::Null);
    assert_eq!(status["transition"], Value::Null);

    let (ok, status, err) = run(vec![
        "schedule", "orders", "--to", "blue", "--at", "5000", "--manual",
    ])
    .await??;
    assert!(ok, "{err}");
    assert_eq!(status["phase"], "SCHEDULED");
    assert_eq!(status["transition"]["to"], "BLUE");
    assert_eq!(status["transition"]["at"], 5000);
    assert_eq!(status["transition"]["auto_promote"], false);
    assert_eq!(status["epoch"], 3);
    // For people: the target owns new keys, the running colour still emits
    // below the cutover.
    let endpoint_for_text = endpoint.clone();
    let text = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cutover_binary()?)
            .args(["status", "orders", "--endpoint", &endpoint_for_text])
            .output()
            .map_err(anyhow::Error::from)
    })
    .await??;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("active BLUE from key 5000 (GREEN below it until the cutover)"),
        "{text}"
    );

    let (ok, status, err) = run(vec!["promote", "orders"]).await??;
    assert!(ok, "{err}");
    assert_eq!(status["transition"]["promoted"], true);

    // Completing before DRAINED is refused, with the reason, and changes nothing.
    let (ok, _, err) = run(vec!["complete", "orders"]).await??;
    assert!(!ok, "complete before DRAINED must fail");
    assert!(err.contains("FailedPrecondition"), "{err}");
    let (_, status, _) = run(vec!["status", "orders"]).await??;
    assert_eq!(status["epoch"], 4, "the refusal wrote nothing");

    // Promotion is the point of no return: abort is refused, with the
    // reason, and changes nothing.
    let (ok, _, err) = run(vec!["abort", "orders"]).await??;
    assert!(!ok, "abort after promote must fail");
    assert!(
        err.contains("promoted") && err.contains("irrevocable"),
        "{err}"
    );
    let (_, status, _) = run(vec!["status", "orders"]).await??;
    assert_eq!(status["phase"], "CUTTING_OVER");
    assert_eq!(status["epoch"], 4);

    let (ok, _, err) = run(vec!["status", "no-such-pipeline"]).await??;
    assert!(!ok);
    assert!(err.contains("NotFound"), "{err}");
    Ok(())
}

/// `cutover status NAME --watch --json` prints the status at once and again
/// on each change, one object per line, until stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_prints_every_change() -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let coordinator = TestCoordinator::start(Arc::new(MemoryStore::new()), test_config()).await?;
    let client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let _gate = client.gate(identity("orders", Colour::Green, 0, 1))?;
    let pipeline = PipelineName::new("orders")?;
    tokio::time::timeout(
        Duration::from_secs(10),
        client.wait_for_epoch(&pipeline, Epoch(1)),
    )
    .await?;
    let mut watching = tokio::process::Command::new(cutover_binary()?)
        .args(["status", "orders", "--watch", "--json"])
        .args(["--endpoint", &coordinator.endpoint()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = watching
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut next = async || -> anyhow::Result<Value> {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("the watch ended"))?;
        Ok(serde_json::from_str(&line)?)
    };
    let first = next().await?;
    assert_eq!(first["pipeline"], "orders");
    assert_eq!(first["transition"], Value::Null);
    let mut control = coordinator.control().await?;
    schedule(
        &mut control,
        "orders",
        schedule_at(Colour::Blue, 1_000_000, false),
    )
    .await?;
    // Every later line is a newer status; one of them has the transition.
    let mut seen = first["epoch"].as_u64().unwrap_or(0);
    loop {
        let update = next().await?;
        let epoch = update["epoch"].as_u64().unwrap_or(0);
        assert!(epoch >= seen, "statuses come in order: {update}");
        seen = epoch;
        if update["phase"] == "SCHEDULED" {
            assert_eq!(update["transition"]["at"], 1_000_000);
            break;
        }
    }
    watching.kill().await?;
    Ok(())
}
