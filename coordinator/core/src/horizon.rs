//! The horizon policy: when and how far the fence moves.
//!
//! The horizon grows from gate *watermarks*, in steps of the window, so store
//! writes grow with event time, not with the number of gates or records: a
//! step is taken once the highest watermark comes within the margin of the
//! fence, and moves the fence one window past it. A gate holding a key
//! reports it; a held key close above the fence (less than one window)
//! counts like a watermark, so a gate whose watermark lags its records by
//! more than the margin is never stuck. A held key far above the fence
//! counts for nothing: one record stamped years ahead waits for the
//! watermarks instead of pushing the fence years ahead.
//!
//! Watermarks themselves are trusted: the step is not capped, because a
//! capped step lets the fence crawl far behind the gates (seen in the
//! simulation after a bootstrap near minus infinity).

use serde::{Deserialize, Serialize};

use crate::domain::Key;

/// Settings of the horizon, stored with each pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HorizonPolicy {
    /// How far the horizon runs ahead of the gates' progress (key units).
    pub window: u64,
    /// Raise the horizon once some gate's watermark is within this distance
    /// of it.
    pub margin: u64,
}

impl HorizonPolicy {
    /// A policy with `window` and a margin of half of it.
    pub fn with_window(window: u64) -> Self {
        let window = window.max(1);
        HorizonPolicy {
            window,
            margin: window / 2,
        }
    }
}

impl Default for HorizonPolicy {
    fn default() -> Self {
        HorizonPolicy::with_window(10_000)
    }
}

/// What one gate tells the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HorizonSignal {
    /// The gate's watermark.
    pub watermark: Key,
    /// Lowest key it holds, if any.
    pub lowest_held: Option<Key>,
}

/// The next horizon, or `None` when the current one is far enough ahead.
/// `cap` (a cutover waiting for promotion) bounds the result.
pub fn next_horizon(
    current: Key,
    policy: HorizonPolicy,
    signals: impl IntoIterator<Item = HorizonSignal>,
    cap: Option<Key>,
) -> Option<Key> {
    let mut max_watermark = Key::MIN;
    let mut lowest_held: Option<Key> = None;
    let mut near_held = Key::MIN;
    let near_limit = current.saturating_add(policy.window);
    for signal in signals {
        max_watermark = max_watermark.max(signal.watermark);
        if let Some(held) = signal.lowest_held {
            lowest_held = Some(lowest_held.map_or(held, |l| l.min(held)));
            if held < near_limit {
                near_held = near_held.max(held);
            }
        }
    }
    let proposed = if current == Key::MIN {
        // Bootstrap: the first fence goes one window past the highest
        // watermark, or past the lowest held key if no watermark exists yet.
        let base = if max_watermark > Key::MIN {
            max_watermark
        } else {
            lowest_held?
        };
        base.saturating_add(policy.window)
    } else {
        let frontier = max_watermark.max(near_held);
        if frontier == Key::MIN || frontier.saturating_add(policy.margin) < current {
            return None;
        }
        frontier.saturating_add(policy.window)
    };
    let proposed = match cap {
        Some(cap) => proposed.min(cap),
        None => proposed,
    };
    (proposed > current).then_some(proposed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm(watermark: i64) -> HorizonSignal {
        HorizonSignal {
            watermark: Key(watermark),
            lowest_held: None,
        }
    }

    fn held(watermark: i64, key: i64) -> HorizonSignal {
        HorizonSignal {
            watermark: Key(watermark),
            lowest_held: Some(Key(key)),
        }
    }

    #[test]
    fn table() {
        let p = HorizonPolicy {
            window: 100,
            margin: 50,
        };
        // (name, current horizon, signals, cap, expected next horizon)
        type Case = (
            &'static str,
            i64,
            Vec<HorizonSignal>,
            Option<i64>,
            Option<i64>,
        );
        let cases: Vec<Case> = vec![
            ("nothing reported", i64::MIN, vec![], None, None),
            (
                "no watermark, nothing held",
                i64::MIN,
                vec![wm(i64::MIN)],
                None,
                None,
            ),
            (
                "bootstrap from watermark",
                i64::MIN,
                vec![wm(1000), wm(900)],
                None,
                Some(1100),
            ),
            (
                "bootstrap from lowest held key",
                i64::MIN,
                vec![held(i64::MIN, 500), held(i64::MIN, 7000)],
                None,
                Some(600),
            ),
            ("far from the fence", 1000, vec![wm(900)], None, None),
            ("within margin", 1000, vec![wm(950)], None, Some(1050)),
            (
                "a watermark far past the fence moves it one window past the watermark",
                1000,
                vec![wm(5000)],
                None,
                Some(5100),
            ),
            (
                "a fence far behind catches up in one step",
                i64::MIN + 100,
                vec![wm(3743)],
                None,
                Some(3843),
            ),
            (
                "held key near the fence",
                1000,
                vec![held(700, 1000)],
                None,
                Some(1100),
            ),
            (
                "held key far above the fence counts for nothing",
                1000,
                vec![held(700, 9_000_000)],
                None,
                None,
            ),
            (
                "cap at a cutover waiting for promotion",
                1000,
                vec![wm(990)],
                Some(1050),
                Some(1050),
            ),
            (
                "cap at the current horizon: no change",
                1000,
                vec![wm(990)],
                Some(1000),
                None,
            ),
            (
                "saturates at +inf",
                i64::MAX - 10,
                vec![wm(i64::MAX - 20)],
                None,
                Some(i64::MAX),
            ),
        ];
        for (name, current, signals, cap, expected) in cases {
            let got = next_horizon(Key(current), p, signals, cap.map(Key));
            assert_eq!(got, expected.map(Key), "{name}");
        }
    }
}
