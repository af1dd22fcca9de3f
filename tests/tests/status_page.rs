//! The status page of `cutover serve`, loaded in headless Chromium while a
//! real transition runs: two jobs' gates (GREEN emitting, BLUE starting)
//! on a coordinator process, a cutover to BLUE at EARLIEST waiting for its
//! promotion. The page shows the phase, the cutover key, the horizon, the
//! gates and the ownership bands; after the promotion it follows the
//! transition on its own (server-sent events, no reload) and its phase
//! history keeps every phase it saw. `/` lists the pipeline and
//! `/metrics` still answers. The screenshot in the README comes from this
//! test (`CUTOVER_SCREENSHOT=docs/status-page.png`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use cutover_client::control::ControlClient;
use cutover_client::{Client, ClientConfig, Gate};
use cutover_core::{Colour, Epoch, Key, Phase, PipelineName, ScheduleRequest};
use cutover_tests::chromium::Chromium;
use cutover_tests::process::{CoordinatorProcess, QUICK_FLEET, free_address};
use cutover_tests::*;

const LIMIT: Duration = Duration::from_secs(60);
/// Event time of the test's first keys (2023-11-14).
const BASE: i64 = 1_700_000_000_000;

/// What the page shows, read from its elements.
const SHOWN: &str = r##"JSON.stringify({
  phase: document.getElementById("phase").textContent,
  epoch: document.getElementById("epoch").textContent,
  key: document.getElementById("cutover-key").textContent,
  horizon: document.getElementById("horizon").textContent,
  transition: document.getElementById("transition").textContent,
  green: [...document.querySelectorAll("#gates-green td")].map(td => td.textContent),
  blue: [...document.querySelectorAll("#gates-blue td")].map(td => td.textContent),
  bands: [...document.querySelectorAll("#timeline .band")].map(b => b.dataset.owner),
  keyLine: document.getElementById("key-line") !== null,
  history: [...document.querySelectorAll("#history li")].map(li => li.dataset.phase),
  live: document.getElementById("live").textContent
})"##;

/// Each gate decides records at keys `from..to` (step 50) once its plan
/// covers them, as a job's gate would, and reports.
async fn records(gates: &mut [Gate], from: i64, to: i64) -> anyhow::Result<()> {
    for gate in gates.iter_mut() {
        tokio::time::timeout(LIMIT, gate.wait_until_decidable(Key(to - 1))).await?;
        for key in (from..to).step_by(50) {
            gate.decide(Key(key));
        }
        // Waiting counted as holding `to - 1`; everything is decided now.
        gate.set_held(0, None);
    }
    Ok(())
}

fn shown(value: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(value.as_str().unwrap_or("null"))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_follows_a_transition_live() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = format!("file:{}", dir.path().display());
    let metrics = free_address()?;
    let metrics_flag = metrics.to_string();
    let mut extra: Vec<&str> = QUICK_FLEET.to_vec();
    extra.extend(["--metrics-listen", &metrics_flag]);
    let coordinator = CoordinatorProcess::start(&store, &extra).await?;
    let pipeline = PipelineName::new("orders")?;
    // GREEN (two gates) emits; BLUE (three gates) starts beside it. Their
    // watermarks move as a job's would.
    let green_client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let mut green: Vec<Gate> = (0..2)
        .map(|i| green_client.gate(identity("orders", Colour::Green, i, 2)))
        .collect::<Result<_, _>>()?;
    // GREEN's gates create the pipeline, owned by GREEN.
    tokio::time::timeout(LIMIT, green_client.wait_for_epoch(&pipeline, Epoch(1))).await?;
    let blue_client = Client::connect(ClientConfig::new(coordinator.endpoint()))?;
    let mut blue: Vec<Gate> = (0..3)
        .map(|i| blue_client.gate(identity("orders", Colour::Blue, i, 3)))
        .collect::<Result<_, _>>()?;
    let mut control = ControlClient::connect(coordinator.endpoint()).await?;
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.green.acked == 2 && s.blue.acked == 3
    })
    .await?;
    // A job's gates: watermarks move, records are decided once decidable.
    let watermark = |gates: &mut Vec<Gate>, to: i64| {
        for (i, gate) in gates.iter_mut().enumerate() {
            gate.observe_watermark(Key(to - 150 * i as i64));
            gate.flush();
        }
    };
    watermark(&mut green, BASE + 4_000);
    watermark(&mut blue, BASE + 2_500);
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.green.highest_watermark == Key(BASE + 4_000)
            && s.blue.highest_watermark == Key(BASE + 2_500)
            && horizon_of(s) > BASE + 3_000
    })
    .await?;
    records(&mut green, BASE, BASE + 3_000).await?;
    records(&mut blue, BASE, BASE + 2_000).await?;
    let request = ScheduleRequest {
        auto_promote: false,
        ..ScheduleRequest::earliest(Colour::Blue)
    };
    let (_, at) = schedule(&mut control, "orders", request).await?;

    let mut browser = Chromium::start(1200, 900).await?;
    browser
        .open(&format!("http://{metrics}/pipelines/orders"))
        .await?;
    let page = shown(
        &browser
            .wait_until(
                r##"document.getElementById("phase").textContent === "SCHEDULED"
                   && document.querySelectorAll("#gates-blue td")[2]?.textContent === "3""##,
                SHOWN,
                LIMIT,
            )
            .await?,
    )?;
    assert!(
        page["key"]
            .as_str()
            .is_some_and(|k| k.contains(&at.to_string())),
        "{page}"
    );
    assert!(
        page["transition"]
            .as_str()
            .is_some_and(|t| t.contains("GREEN → BLUE") && t.contains("waiting for a promotion")),
        "{page}"
    );
    assert_eq!(page["green"][0], "GREEN", "{page}");
    assert_eq!(page["green"][2], "2", "two GREEN gates connected: {page}");
    assert_eq!(page["blue"][3], "3", "three BLUE gates acked: {page}");
    assert_eq!(
        page["bands"],
        serde_json::json!(["GREEN", "BLUE"]),
        "{page}"
    );
    assert_eq!(page["keyLine"], true, "{page}");
    assert_eq!(page["live"], "live", "{page}");
    assert_eq!(page["history"], serde_json::json!(["SCHEDULED"]), "{page}");
    if let Ok(path) = std::env::var("CUTOVER_SCREENSHOT") {
        browser.screenshot(std::path::Path::new(&path)).await?;
    }
    let shot = dir.path().join("page.png");
    browser.screenshot(&shot).await?;
    let png = std::fs::read(&shot)?;
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real picture"
    );

    // Promoted, and GREEN's watermarks pass the key: the page moves on by
    // itself.
    control.promote(&pipeline).await?;
    watermark(&mut blue, at + 1_500);
    watermark(&mut green, at + 2_000);
    wait_for_status(&mut control, "orders", LIMIT, |s| {
        horizon_of(s) > at + 1_000
    })
    .await?;
    records(&mut green, BASE + 3_000, at + 1_000).await?;
    records(&mut blue, BASE + 2_000, at + 1_000).await?;
    let page = shown(
        &browser
            .wait_until(
                r#"["DRAINED", "COMPLETED"].includes(document.getElementById("phase").textContent)"#,
                SHOWN,
                LIMIT,
            )
            .await?,
    )?;
    let history: Vec<&str> = page["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(history.first(), Some(&"SCHEDULED"), "{page}");
    assert!(history.contains(&"DRAINED"), "{page}");
    let drained = wait_for_status(&mut control, "orders", LIMIT, |s| {
        s.phase == Some(Phase::Drained)
    })
    .await?;
    assert!(
        page["epoch"].as_str().and_then(|e| e.parse::<u64>().ok()) <= Some(epoch_of(&drained)),
        "{page}"
    );

    // The index lists it; the metrics are still there.
    browser.open(&format!("http://{metrics}/")).await?;
    let listed = browser
        .wait_until(
            r##"document.querySelectorAll("#pipelines a").length > 0"##,
            r##"[...document.querySelectorAll("#pipelines a")].map(a => a.getAttribute("href"))"##,
            LIMIT,
        )
        .await?;
    assert_eq!(listed, serde_json::json!(["/pipelines/orders"]));
    let mut scrape = tokio::net::TcpStream::connect(metrics).await?;
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await?;
    let mut exposition = String::new();
    scrape.read_to_string(&mut exposition).await?;
    assert!(
        exposition.contains("cutover_epoch{pipeline=\"orders\"}"),
        "{exposition}"
    );
    drop((green, blue));
    Ok(())
}
