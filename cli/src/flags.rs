//! Value parsers of the command line's flags: durations in words
//! (`10s`, `500ms`) with a clear message for a negative one, and the horizon
//! window checked against the protocol's bound.

use std::time::Duration;

use cutover_core::HorizonPolicy;
use cutover_core::limits::MAX_HORIZON_WINDOW;

/// Smallest and largest message size a coordinator may accept.
pub const MESSAGE_BYTES: std::ops::RangeInclusive<u64> = (64 * 1024)..=(256 * 1024 * 1024);

/// A duration such as `10s`, `1m30s` or `500ms`; never negative.
pub fn duration(text: &str) -> Result<Duration, String> {
    if text.trim_start().starts_with('-') {
        return Err(format!("durations cannot be negative: {text}"));
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (expected e.g. 10s, 500ms, 1m30s)"))
}

/// A duration of more than zero.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let value = duration(text)?;
    if value.is_zero() {
        return Err(format!("{text} must be more than zero"));
    }
    Ok(value)
}

/// A rate per second: 0 (no limit), or from 0.001 up.
pub fn rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate == 0.0 || (rate.is_finite() && rate >= 0.001) => Ok(rate),
        _ => Err(format!(
            "{text} is not a rate: give calls per second, 0.001 or more (0 for no limit)"
        )),
    }
}

/// A horizon window: a duration of at least 1 ms and at most 2^40 ms
/// (about 34.8 years), the protocol's bound.
pub fn horizon_window(text: &str) -> Result<Duration, String> {
    let window = duration(text)?;
    let millis = window.as_millis();
    if millis < 1 || millis > u128::from(MAX_HORIZON_WINDOW) {
        return Err(format!(
            "{text} is out of bounds: a horizon window must be between 1ms and {MAX_HORIZON_WINDOW}ms (2^40 ms, about 34.8 years)"
        ));
    }
    Ok(window)
}

/// A coordinator id (see `cutover_core::fleet::CoordinatorId`).
pub fn coordinator_id(text: &str) -> Result<cutover_core::fleet::CoordinatorId, String> {
    cutover_core::fleet::CoordinatorId::new(text).map_err(|e| e.to_string())
}

/// The horizon policy of a window parsed by [`horizon_window`].
pub fn horizon_policy(window: Duration) -> HorizonPolicy {
    HorizonPolicy::with_window(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_windows() {
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        let negative = duration("-5s").expect_err("negative");
        assert!(negative.contains("negative"), "{negative}");
        assert!(duration("soon").is_err());
        for bad in ["0s", "0ms", "10000years", "500us"] {
            let err = horizon_window(bad).expect_err(bad);
            assert!(err.contains("2^40"), "{err}");
        }
        assert_eq!(horizon_window("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(horizon_policy(Duration::from_secs(10)).window, 10_000);
    }

    #[test]
    fn positive_durations_and_rates() {
        assert!(positive_duration("0s").is_err());
        assert_eq!(positive_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(rate("0"), Ok(0.0));
        assert_eq!(rate("2.5"), Ok(2.5));
        for bad in ["-1", "NaN", "inf", "fast", "1e-30"] {
            let err = rate(bad).expect_err(bad);
            assert!(err.contains("calls per second"), "{err}");
        }
    }
}
