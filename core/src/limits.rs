//! The bounds every value from outside must respect, and why.
//!
//! Keys are `i64`; the coordinator adds windows and lateness to them. The
//! bounds keep every such sum below `i64::MAX` without saturating, so that
//! `Key::MAX` keeps its one meaning (the end of input) and no cutover can be
//! placed where the horizon could never pass it.

use crate::domain::Key;
use crate::error::CoreError;

/// Largest operator parallelism a gate may announce: Flink's own limit
/// (`2^15`, its maximum number of key groups).
pub const MAX_PARALLELISM: u32 = 1 << 15;

/// Largest horizon window, in key units: `2^40` (about 34.8 years in
/// milliseconds).
pub const MAX_HORIZON_WINDOW: u64 = 1 << 40;

/// Largest allowed lateness of a transition, in key units: `2^40`, like the
/// window.
pub const MAX_ALLOWED_LATENESS: u64 = 1 << 40;

/// Largest absolute value of a cutover key: `2^62`. A cutover key plus the
/// largest lateness plus two of the largest windows stays below `i64::MAX`.
pub const MAX_CUTOVER_KEY: i64 = 1 << 62;

fn out_of_bounds(what: &'static str, value: String, bound: String) -> CoreError {
    CoreError::OutOfBounds { what, value, bound }
}

/// Checks a horizon window.
pub fn check_horizon_window(window: u64) -> Result<u64, CoreError> {
    if window == 0 || window > MAX_HORIZON_WINDOW {
        return Err(out_of_bounds(
            "horizon window",
            window.to_string(),
            format!("between 1 and {MAX_HORIZON_WINDOW} (2^40)"),
        ));
    }
    Ok(window)
}

/// Checks an allowed lateness.
pub fn check_allowed_lateness(lateness: u64) -> Result<u64, CoreError> {
    if lateness > MAX_ALLOWED_LATENESS {
        return Err(out_of_bounds(
            "allowed lateness",
            lateness.to_string(),
            format!("at most {MAX_ALLOWED_LATENESS} (2^40)"),
        ));
    }
    Ok(lateness)
}

/// Checks an explicit cutover key.
pub fn check_cutover_key(key: Key) -> Result<Key, CoreError> {
    if key.0.unsigned_abs() > MAX_CUTOVER_KEY.unsigned_abs() {
        return Err(out_of_bounds(
            "cutover key",
            key.0.to_string(),
            format!("between -{MAX_CUTOVER_KEY} and {MAX_CUTOVER_KEY} (2^62)"),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_table() {
        assert!(check_horizon_window(0).is_err());
        assert!(check_horizon_window(1).is_ok());
        assert!(check_horizon_window(MAX_HORIZON_WINDOW).is_ok());
        assert!(check_horizon_window(MAX_HORIZON_WINDOW + 1).is_err());
        assert!(check_horizon_window(u64::MAX).is_err());
        assert!(check_allowed_lateness(0).is_ok());
        assert!(check_allowed_lateness(MAX_ALLOWED_LATENESS).is_ok());
        assert!(check_allowed_lateness(u64::MAX).is_err());
        for ok in [0, MAX_CUTOVER_KEY, -MAX_CUTOVER_KEY, 1_700_000_000_000] {
            assert!(check_cutover_key(Key(ok)).is_ok(), "{ok}");
        }
        for bad in [
            i64::MAX,
            i64::MIN,
            MAX_CUTOVER_KEY + 1,
            -MAX_CUTOVER_KEY - 1,
        ] {
            let err = check_cutover_key(Key(bad)).expect_err("out of bounds");
            assert!(err.to_string().contains("2^62"), "{err}");
        }
        // The headroom the bounds promise.
        let worst =
            MAX_CUTOVER_KEY as i128 + MAX_ALLOWED_LATENESS as i128 + 2 * MAX_HORIZON_WINDOW as i128;
        assert!(worst < i64::MAX as i128);
    }
}
