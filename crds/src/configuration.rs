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
    pub fn parse(&self) -> Result<Duration, humantime::DurationError> {
        humantime::parse_duration(&self.0)
    }
}

/// Why a `spec.configuration` cannot be used (the field is named).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigurationError {
    /// A duration field does not parse.
    #[error("spec.configuration.{field}: {value:?} is not a duration: {reason}")]
    NotADuration {
        /// The field, as written in the resource.
        field: &'static str,
        /// What it holds.
        value: String,
        /// Why it is not a duration.
        reason: humantime::DurationError,
    },
    /// `horizonWindow` is zero: the horizon could never run ahead.
    #[error("spec.configuration.horizonWindow must be positive")]
    ZeroHorizonWindow,
    /// `coordinator` is not an `http://` or `https://` address.
    #[error(
        "spec.configuration.coordinator must be http:// or https:// addresses separated by commas, not {0:?}"
    )]
    NotAnHttpAddress(String),
    /// `spec.placement` holds a value that is not valid.
    #[error(transparent)]
    Placement(#[from] crate::placement::PlacementError),
}

/// A configuration with its durations parsed: what the controller acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durations {
    /// `abortGracePeriod`.
    pub abort_grace_period: Duration,
    /// `deletionDelay`.
    pub deletion_delay: Duration,
    /// `horizonWindow` (positive).
    pub horizon_window: Duration,
    /// `allowedLateness`.
    pub allowed_lateness: Duration,
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
    /// children's Flink configuration; several coordinators serving the
    /// same pipelines are separated by commas (gates stay on one and move
    /// to the next when it is gone). Default
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
    /// Every duration parsed, or the first field that is wrong.
    pub fn validate(&self) -> Result<Durations, ConfigurationError> {
        let field = |field: &'static str, value: &DurationText| {
            value
                .parse()
                .map_err(|reason| ConfigurationError::NotADuration {
                    field,
                    value: value.0.clone(),
                    reason,
                })
        };
        let durations = Durations {
            abort_grace_period: field("abortGracePeriod", &self.abort_grace_period)?,
            deletion_delay: field("deletionDelay", &self.deletion_delay)?,
            horizon_window: field("horizonWindow", &self.horizon_window)?,
            allowed_lateness: field("allowedLateness", &self.allowed_lateness)?,
        };
        if durations.horizon_window.is_zero() {
            return Err(ConfigurationError::ZeroHorizonWindow);
        }
        if !crate::address::http_addresses(&self.coordinator) {
            return Err(ConfigurationError::NotAnHttpAddress(
                self.coordinator.clone(),
            ));
        }
        Ok(durations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_block_takes_every_default() {
        let parsed: BlueGreenConfiguration = serde_json::from_str("{}").expect("valid");
        assert_eq!(parsed, BlueGreenConfiguration::default());
        let durations = parsed.validate().expect("valid");
        assert_eq!(durations.horizon_window, Duration::from_secs(10));
        assert_eq!(durations.abort_grace_period, Duration::from_secs(600));
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
            (
                r#"{"coordinator": "http://a:7700,b:7700"}"#,
                "http:// or https://",
            ),
        ];
        for (json, expected) in table {
            let parsed: BlueGreenConfiguration = serde_json::from_str(json).expect("parses");
            let error = parsed.validate().expect_err(json).to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let mode: Result<BlueGreenConfiguration, _> =
            serde_json::from_str(r#"{"decisionMode": "PROCESSING_TIME"}"#);
        assert!(mode.is_err(), "unknown decision modes are refused");
    }
}
