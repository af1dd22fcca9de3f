//! `spec.configuration`: how a FlinkBlueGreenDeployment moves between
//! colours. Every field has a default, so an empty block is valid.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration written the Kubernetes way: `90s`, `10m`, `1h 30m`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl DurationText {
    /// The parsed duration, or why it is not one.
    pub fn parse(&self) -> Result<Duration, String> {
        humantime::parse_duration(&self.0).map_err(|e| format!("{:?}: {e}", self.0))
    }
}

impl From<&str> for DurationText {
    fn from(text: &str) -> Self {
        DurationText(text.to_string())
    }
}

/// The key a gate decides on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionMode {
    /// The record's timestamp: every record emitted exactly once.
    #[default]
    EventTime,
    /// The subtask's current watermark: for records without a usable
    /// timestamp; exact only up to the watermark's lag.
    Watermark,
}

/// How the deployment moves between colours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct BlueGreenConfiguration {
    /// A new colour that fails (or never becomes RUNNING and STABLE) within
    /// this long after it was started is torn down and the transition
    /// aborted; the old colour keeps emitting. Default `10m`.
    pub abort_grace_period: DurationText,
    /// How long the old colour's FlinkDeployment is kept (suspended, with
    /// its final savepoint) after the transition completed. Default `5m`.
    pub deletion_delay: DurationText,
    /// How far the horizon runs ahead of the gates' watermarks, in event
    /// time; also the lead time of a cutover at EARLIEST. Default `10s`.
    pub horizon_window: DurationText,
    /// How late (in event time) a record may arrive below a completed
    /// cutover and still go to the colour that owned it. Default `0s`.
    pub allowed_lateness: DurationText,
    /// The key gates decide on. Default `EVENT_TIME`.
    pub decision_mode: DecisionMode,
    /// Promote as soon as the new colour's gates are ready; with `false`
    /// the cutover waits for a promotion: the annotation
    /// `cutover.dev/promote` on the resource (what `cutover promote` sets).
    /// Default `true`.
    pub auto_promote: bool,
    /// gRPC address of the cutover coordinator, injected into both
    /// children's Flink configuration. Default
    /// `http://cutover.cutover-system.svc:7700`.
    pub coordinator: String,
}

impl Default for BlueGreenConfiguration {
    fn default() -> Self {
        BlueGreenConfiguration {
            abort_grace_period: "10m".into(),
            deletion_delay: "5m".into(),
            horizon_window: "10s".into(),
            allowed_lateness: "0s".into(),
            decision_mode: DecisionMode::EventTime,
            auto_promote: true,
            coordinator: "http://cutover.cutover-system.svc:7700".into(),
        }
    }
}

impl BlueGreenConfiguration {
    /// Every duration parsed, or the first field that is not one.
    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in [
            ("abortGracePeriod", &self.abort_grace_period),
            ("deletionDelay", &self.deletion_delay),
            ("horizonWindow", &self.horizon_window),
            ("allowedLateness", &self.allowed_lateness),
        ] {
            value
                .parse()
                .map_err(|e| format!("spec.configuration.{field}: {e}"))?;
        }
        if self.horizon_window.parse().is_ok_and(|d| d.is_zero()) {
            return Err("spec.configuration.horizonWindow must be positive".into());
        }
        if !(self.coordinator.starts_with("http://") || self.coordinator.starts_with("https://")) {
            return Err(format!(
                "spec.configuration.coordinator must be an http:// or https:// address, not {:?}",
                self.coordinator
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_block_takes_every_default() {
        let parsed: BlueGreenConfiguration = serde_json::from_str("{}").expect("valid");
        assert_eq!(parsed, BlueGreenConfiguration::default());
        assert_eq!(parsed.validate(), Ok(()));
        assert_eq!(parsed.horizon_window.parse(), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn bad_fields_are_named() {
        let table = [
            (
                r#"{"deletionDelay": "soon"}"#,
                "spec.configuration.deletionDelay",
            ),
            (r#"{"horizonWindow": "0s"}"#, "must be positive"),
            (r#"{"coordinator": "cutover:7700"}"#, "http:// or https://"),
        ];
        for (json, expected) in table {
            let parsed: BlueGreenConfiguration = serde_json::from_str(json).expect("parses");
            let error = parsed.validate().expect_err(json);
            assert!(error.contains(expected), "{json}: {error}");
        }
        let mode: Result<BlueGreenConfiguration, _> =
            serde_json::from_str(r#"{"decisionMode": "PROCESSING_TIME"}"#);
        assert!(mode.is_err(), "unknown decision modes are refused");
    }
}
