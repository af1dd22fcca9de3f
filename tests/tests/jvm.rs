//! Real Java Flink with the JVM gate (the Rust client through JNI):
//! `tests/flink/run-jvm.sh` runs GREEN and BLUE as two Java Flink jobs
//! (local execution, parallelism 2 and 3) on 100,000 out-of-order records
//! with the gate before a file sink, cuts over at EARLIEST while both run,
//! and counts the union of both outputs: EVENT_TIME mode must emit every
//! record exactly once; WATERMARK mode is measured. `--classloaders` loads
//! the gate in two classloaders of one JVM, as a session cluster does.
//! `--rescale` stops a job holding records with a savepoint and restores it
//! at another parallelism: the held records come out exactly once.
//! `--java-gate sink` runs the hand-over with the gate inside the sink.
//!
//! The scripts build the gate jar (client/jvm/build.sh) and set up the
//! Flink jars themselves; if Java is missing the tests fail with the
//! scripts' message.

use cutover_tests::process::{last_json_line, script_command};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flink/run-jvm.sh");

#[test]
fn two_real_java_flink_jobs_hand_over_exactly_once_in_event_time_mode() -> anyhow::Result<()> {
    let figures = last_json_line(&mut script_command(SCRIPT), "tests/flink/run-jvm.sh")?;
    let exact = &figures["event_time"];
    assert_eq!(exact["records"], 100_000, "{figures}");
    // Every connection (gates, control) was mutual TLS.
    assert_eq!(exact["transport"], "mutual TLS", "{figures}");
    assert_eq!(
        (&exact["duplicates"], &exact["gaps"]),
        (&0.into(), &0.into()),
        "{figures}"
    );
    assert_durable_at_drained(exact);
    assert_eq!(figures["watermark"]["records"], 100_000, "{figures}");
    Ok(())
}

/// GREEN counted as drained only once its gates' completed checkpoints
/// were past the cutover (the jobs checkpoint every second): the gates
/// reported their checkpoints, and the coordinator waited for them.
fn assert_durable_at_drained(exact: &serde_json::Value) {
    let key = exact["cutover_key"].as_i64();
    let durable = exact["green_checkpointed_at_drained"].as_i64();
    assert!(
        matches!((key, durable), (Some(key), Some(durable)) if durable >= key),
        "GREEN's lowest checkpointed watermark at DRAINED should be at or past the cutover key: {exact}"
    );
}

/// The same hand-over with the gate inside the sink (`GatedSink` around a
/// two-phase sink, no gate operator): every record exactly once, and the
/// gate learns of completed checkpoints through the sink's committer. The
/// job also checks that a sink with its own topology (FileSink) is refused.
#[test]
fn a_gate_inside_the_sink_hands_over_exactly_once() -> anyhow::Result<()> {
    let mut command = script_command(SCRIPT);
    command.args(["--java-gate", "sink", "--modes", "EVENT_TIME"]);
    let figures = last_json_line(&mut command, "tests/flink/run-jvm.sh --java-gate sink")?;
    let exact = &figures["event_time"];
    assert_eq!(exact["records"], 100_000, "{figures}");
    assert_eq!(
        (&exact["duplicates"], &exact["gaps"]),
        (&0.into(), &0.into()),
        "{figures}"
    );
    assert_durable_at_drained(exact);
    Ok(())
}

#[test]
fn the_gate_works_from_two_classloaders_of_one_jvm() -> anyhow::Result<()> {
    let mut command = script_command(SCRIPT);
    command.arg("--classloaders");
    let result = last_json_line(&mut command, "tests/flink/run-jvm.sh --classloaders")?;
    assert_eq!(result["distinct_libraries"], true, "{result}");
    assert_eq!(
        result["decisions"],
        serde_json::json!(["EMIT", "EMIT"]),
        "{result}"
    );
    Ok(())
}

/// Held records across a savepoint and a rescale (2 to 3 subtasks), with
/// the gate as an operator and inside the sink.
fn held_records_across_a_rescale(gate: &str) -> anyhow::Result<()> {
    let mut command = script_command(SCRIPT);
    command.args(["--rescale", gate]);
    let result = last_json_line(
        &mut command,
        &format!("tests/flink/run-jvm.sh --rescale {gate}"),
    )?;
    assert_eq!(result["emitted_before_savepoint"], 0, "{result}");
    assert_eq!(result["released_after_restore"], 1_000, "{result}");
    assert_eq!(result["duplicates"], 0, "{result}");
    assert_eq!(result["wrong_timestamps"], 0, "{result}");
    assert_eq!(result["later_contiguous"], true, "{result}");
    Ok(())
}

#[test]
fn held_records_survive_a_savepoint_and_a_rescale() -> anyhow::Result<()> {
    held_records_across_a_rescale("operator")
}

#[test]
fn records_held_inside_the_sink_survive_a_savepoint_and_a_rescale() -> anyhow::Result<()> {
    held_records_across_a_rescale("sink")
}

/// `tests/flink/run-jvm.sh --diagnostics`: as the PyFlink gate's
/// diagnostics, from a Java job with `GateOperator` (refused at
/// `GateConfig.coordinator`, logged through Flink's logging, metrics in the
/// operator's group `cutover`).
#[test]
fn the_jvm_gate_says_what_it_is_waiting_for() -> anyhow::Result<()> {
    let mut command = script_command(SCRIPT);
    command.arg("--diagnostics");
    let result = last_json_line(&mut command, "tests/flink/run-jvm.sh --diagnostics")?;
    cutover_tests::diagnostics::assert_gate_diagnostics(&result);
    Ok(())
}

/// `tests/flink/run-jvm.sh --tail-agreement`: every decision the Java side
/// takes from the tail the Rust client publishes is the Rust plan's, over
/// 20,000 generated plans and every key around their boundaries (extremes
/// included), for both colours; and a reader never sees a tail torn
/// between two plans a writer swaps under it.
#[test]
fn java_decides_from_the_published_tail_as_the_plan_does() -> anyhow::Result<()> {
    let mut command = script_command(SCRIPT);
    command.arg("--tail-agreement");
    let result = last_json_line(&mut command, "tests/flink/run-jvm.sh --tail-agreement")?;
    assert_eq!(result["plans"], 20_000, "{result}");
    assert_eq!(result["disagreements"], 0, "{result}");
    assert_eq!(result["torn"], 0, "{result}");
    assert_eq!(result["swapped_plans_differ"], true, "{result}");
    let checked = result["decisions_checked"].as_u64().unwrap_or(0);
    let covered = result["covered_by_tail"].as_u64().unwrap_or(0);
    assert!(covered * 2 > checked, "the tail covers most keys: {result}");
    let reads = result["concurrent_reads"].as_u64().unwrap_or(0);
    assert!(reads > 1_000, "{result}");
    // A reading during a publication the reader had not seen hands the
    // decision to the native gate instead of waiting: rare, never torn.
    let handed = result["handed_to_native"].as_u64();
    assert!(
        handed.is_some_and(|h| h * 10 < reads),
        "most readings decide from the tail: {result}"
    );
    Ok(())
}
