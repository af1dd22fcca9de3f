//! Real Apache Flink: `tests/flink/run.sh` runs GREEN and BLUE as two PyFlink
//! jobs (local execution, parallelism 2 and 3) on 20,000 out-of-order
//! records with the Python gate before a file sink, cuts over at EARLIEST
//! while both run, and counts the union of both outputs. EVENT_TIME mode
//! must emit every record exactly once; WATERMARK mode is measured. Every
//! connection is mutual TLS: the gates find their certificate through the
//! CUTOVER_TLS_* variables.
//!
//! Set-up (virtualenv, PyFlink, the gate wheel) happens inside the script;
//! if Python or Java is missing the test fails with the script's message.

use cutover_tests::process::{last_json_line, script_command};

#[test]
fn two_real_pyflink_jobs_hand_over_exactly_once_in_event_time_mode() -> anyhow::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/flink/run.sh");
    let figures = last_json_line(&mut script_command(script), "tests/flink/run.sh")?;
    let exact = &figures["event_time"];
    assert_eq!(exact["records"], 20_000, "{figures}");
    // Every connection (gates, control) was mutual TLS.
    assert_eq!(exact["transport"], "mutual TLS", "{figures}");
    assert_eq!(
        (&exact["duplicates"], &exact["gaps"]),
        (&0.into(), &0.into()),
        "{figures}"
    );
    let measured = &figures["watermark"];
    assert_eq!(
        measured["records"], 20_000,
        "WATERMARK mode ran too: {figures}"
    );
    Ok(())
}

/// `tests/flink/run.sh --diagnostics`: an endpoint without `http://` is
/// refused when the gate is built, with the fix in the message; a job whose
/// coordinator cannot be reached logs its held records in Flink's log and
/// fails at the end of its input with a `GateOverflow` naming the endpoint,
/// saying it never connected, and why; a running gate's figures are Flink
/// metrics (read through Flink's Prometheus reporter).
#[test]
fn a_pyflink_gate_says_what_it_is_waiting_for() -> anyhow::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/flink/run.sh");
    let mut command = script_command(script);
    command.arg("--diagnostics");
    let result = last_json_line(&mut command, "tests/flink/run.sh --diagnostics")?;
    cutover_tests::diagnostics::assert_gate_diagnostics(&result);
    Ok(())
}
