//! What both Flink gates (PyFlink's and the JVM's) must report when a user
//! gets the coordinator wrong, as their diagnostics scripts summarise it.

use serde_json::Value;

/// Checks a diagnostics summary: `scheme_less` (the refusal of
/// `127.0.0.1:7700`), `unreachable` (the job's failure text, or an object
/// with `overflow`, `warning` and `job_failed`), `warning` (a log line),
/// `metrics` (the gate's Flink metrics by name).
pub fn assert_gate_diagnostics(result: &Value) {
    let refused = result["scheme_less"].as_str().unwrap_or("");
    assert!(
        refused.contains("write http://127.0.0.1:7700"),
        "a scheme-less endpoint must be refused with the fix: {result}"
    );
    let unreachable = &result["unreachable"];
    let failure = unreachable["overflow"]
        .as_str()
        .or(unreachable.as_str())
        .unwrap_or("");
    let warning = unreachable["warning"]
        .as_str()
        .or(result["warning"].as_str())
        .unwrap_or("");
    for text in [failure, warning] {
        assert!(
            text.contains("never connected to http://127.0.0.1:"),
            "{result}"
        );
        assert!(text.contains("Connection refused"), "{result}");
        assert!(text.contains("records held"), "{result}");
        assert!(text.contains("plan epoch -1"), "{result}");
    }
    assert!(failure.contains("still undecidable"), "{result}");
    assert!(failure.contains("after the end of input"), "{result}");
    assert!(failure.contains("40 records held"), "{result}");
    let metrics = &result["metrics"];
    assert_eq!(metrics["connected"].as_f64(), Some(1.0), "{result}");
    assert!(metrics["emitted"].as_f64() > Some(0.0), "{result}");
    assert!(metrics["epoch"].as_f64() >= Some(0.0), "{result}");
    assert!(metrics["held"].as_f64().is_some(), "{result}");
    assert!(metrics["dropped"].as_f64().is_some(), "{result}");
}
