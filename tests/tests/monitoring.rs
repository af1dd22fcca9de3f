//! The alerting rules and the Grafana dashboard in `deploy/monitoring`:
//! promtool accepts the rules and their unit tests pass; every metric they
//! name is one a running coordinator (or the controller) exposes; and the
//! status metrics they watch follow a real pipeline: a scheduled
//! transition's phase, its gates, and a fleet peer that stops renewing.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cutover_client::ControlClient;
use cutover_controller::edge::{ActionLabel, OutcomeLabel};
use cutover_core::Colour;
use cutover_tests::manifests::{named, render_dir};
use cutover_tests::process::{CoordinatorProcess, QUICK_FLEET, free_address};
use cutover_tests::{pipeline, schedule, schedule_at};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn monitoring_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring")
}

fn promtool(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(monitoring_dir())
        .output()
        .context("running promtool (Debian package `prometheus`; .ci/setup installs it)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    anyhow::ensure!(output.status.success(), "promtool {args:?} failed:\n{text}");
    Ok(text)
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() -> anyhow::Result<()> {
    let checked = promtool(&["check", "rules", "alerts.yaml"])?;
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yaml"])?;
    assert!(tested.contains("SUCCESS"), "{tested}");
    Ok(())
}

#[test]
fn the_monitoring_kustomization_carries_the_dashboard_and_the_rules() -> anyhow::Result<()> {
    let docs = render_dir("monitoring")?;
    let dashboard = named(&docs, "ConfigMap", "cutover-grafana-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json = dashboard["data"]["grafana-dashboard.json"]
        .as_str()
        .context("dashboard data")?;
    let parsed: serde_json::Value = serde_json::from_str(json)?;
    assert_eq!(parsed["uid"], "cutover-overview");
    let rules = named(&docs, "ConfigMap", "cutover-prometheus-rules");
    let text = rules["data"]["alerts.yaml"]
        .as_str()
        .context("rules data")?;
    assert_eq!(
        text,
        std::fs::read_to_string(monitoring_dir().join("alerts.yaml"))?
    );
    Ok(())
}

/// The sample names an exposition offers (`_total` added to counters).
fn exposed_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let (name, kind) = rest.split_once(' ')?;
            Some(match kind {
                "counter" => format!("{name}_total"),
                _ => name.to_string(),
            })
        })
        .collect()
}

/// Every `cutover_*` name in `text`.
fn named_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("cutover_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The query expressions of the rules and of the dashboard's panels.
fn expressions() -> anyhow::Result<Vec<String>> {
    let rules: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(
        monitoring_dir().join("alerts.yaml"),
    )?)?;
    let mut exprs = Vec::new();
    for group in rules["groups"].as_sequence().context("groups")? {
        for rule in group["rules"].as_sequence().context("rules")? {
            exprs.push(rule["expr"].as_str().context("expr")?.to_string());
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        monitoring_dir().join("grafana-dashboard.json"),
    )?)?;
    for panel in dashboard["panels"].as_array().context("panels")? {
        for target in panel["targets"].as_array().context("targets")? {
            exprs.push(target["expr"].as_str().context("expr")?.to_string());
        }
    }
    Ok(exprs)
}

async fn scrape(address: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// The value of the sample `series` (name and labels as exposed).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// Scrapes `address` until `series` has `value` (another process offers no
/// event to await; bounded in time).
async fn wait_for_sample(
    address: SocketAddr,
    series: &str,
    value: f64,
    limit: Duration,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + limit;
    loop {
        let exposition = scrape(address).await?;
        if sample(&exposition, series) == Some(value) {
            return Ok(exposition);
        }
        if Instant::now() > deadline {
            bail!("{series} did not become {value} within {limit:?}:\n{exposition}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_and_dashboard_watch_metrics_a_coordinator_exposes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = format!("file:{}", dir.path().display());
    let metrics_a = free_address()?;
    let metrics_b = free_address()?;
    let (a_metrics, b_metrics) = (metrics_a.to_string(), metrics_b.to_string());
    let with = |id: &'static str, metrics: &str| {
        let mut extra: Vec<String> = QUICK_FLEET.iter().map(|s| s.to_string()).collect();
        extra.extend(["--coordinator-id".into(), id.into()]);
        extra.extend(["--metrics-listen".into(), metrics.to_string()]);
        extra
    };
    let extra_a = with("coordinator-a", &a_metrics);
    let extra_b = with("coordinator-b", &b_metrics);
    let a = CoordinatorProcess::start(
        &store,
        &extra_a.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;
    let mut b = CoordinatorProcess::start(
        &store,
        &extra_b.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;

    let mut control = ControlClient::connect(a.endpoint()).await?;
    control
        .create(&pipeline("orders"), Colour::Blue, None)
        .await?;
    schedule(
        &mut control,
        "orders",
        schedule_at(Colour::Green, i64::MAX / 2, false),
    )
    .await?;

    let exposition = wait_for_sample(
        metrics_a,
        r#"cutover_fleet_peer_live{peer="coordinator-b"}"#,
        1.0,
        Duration::from_secs(20),
    )
    .await?;
    let phase = |p: &str| format!(r#"cutover_transition_phase{{pipeline="orders",phase="{p}"}}"#);
    assert_eq!(sample(&exposition, &phase("SCHEDULED")), Some(1.0));
    assert_eq!(sample(&exposition, &phase("CUTTING_OVER")), Some(0.0));
    let gates = r#"cutover_gates_connected{pipeline="orders",colour="BLUE"}"#;
    assert_eq!(sample(&exposition, gates), Some(0.0), "{exposition}");

    let mut exposed = exposed_names(&exposition);
    // The controller's families appear with their first sample.
    let controller = cutover_controller::edge::ControllerMetrics::default();
    controller
        .actions
        .get_or_create(&ActionLabel {
            action: "CreateChild",
            outcome: "failed",
        })
        .inc();
    controller
        .reconciliations
        .get_or_create(&OutcomeLabel { outcome: "ok" })
        .inc();
    let mut registry = Registry::default();
    controller.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    exposed.extend(exposed_names(&text));
    let named: BTreeSet<String> = expressions()?
        .iter()
        .flat_map(|e| named_metrics(e))
        .collect();
    assert!(named.len() >= 15, "{named:?}");
    let missing: Vec<&String> = named.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "named by the rules or dashboard but not exposed: {missing:?}\nexposed: {exposed:?}"
    );

    // B stops without removing its liveness record: A stops counting it.
    b.kill9()?;
    wait_for_sample(
        metrics_a,
        r#"cutover_fleet_peer_live{peer="coordinator-b"}"#,
        0.0,
        Duration::from_secs(20),
    )
    .await?;
    drop(a);
    Ok(())
}
