//! The horizon policy: when and how far the fence moves.
//!
//! The fence follows the jobs, not single gates. Each colour's job is as
//! far as its slowest *active* gate — connected, neither idle nor finished,
//! with a watermark — which is Flink's own rule for combining the
//! watermarks of parallel inputs; a job whose connected gates all finished
//! is as far as the last real watermark any of them reached (never the
//! end-of-input watermark). The fence follows the job that leads: once
//! that job comes within the margin of it, it moves one window past it. So
//! one subtask far ahead of its job (a record stamped decades ahead, which
//! its watermark then follows) does not move the fence, and a finished gate
//! (whose watermark is the end of input) does not drive it to infinity; a
//! job catching up from an old savepoint does not hold back the one that
//! leads. Store writes grow with event time, not with gates or records.
//!
//! A gate holding a key close above the fence (less than one window) counts
//! like a watermark, so a subtask whose records run ahead of its job's
//! slowest subtask is never stuck: each such request moves the fence at most
//! one window past the held key. A held key far above the fence counts for
//! nothing: one record stamped years ahead waits (held and counted) instead
//! of pushing the fence years ahead — until every connected gate finished
//! its input: then nothing else can arrive, and the fence moves one window
//! past the lowest held key, however far, so the last records are decided.
//!
//! What bounds a step: the slowest active gate of the leading job plus one
//! window, or a held key within one window of the fence plus one window.

use serde::{Deserialize, Serialize};

use crate::domain::{Colour, Key};
use crate::error::CoreError;
use crate::limits::{MAX_HORIZON_WINDOW, check_horizon_window};

/// Settings of the horizon, stored with each pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HorizonPolicy {
    /// How far the horizon runs ahead of the gates' progress (key units).
    pub window: u64,
    /// Raise the horizon once the leading job's watermark is within this
    /// distance of it.
    pub margin: u64,
}

impl HorizonPolicy {
    /// A policy with `window` (checked against
    /// [`crate::limits::MAX_HORIZON_WINDOW`]) and a margin of half of it.
    pub fn new(window: u64) -> Result<Self, CoreError> {
        let window = check_horizon_window(window)?;
        Ok(HorizonPolicy {
            window,
            margin: window / 2,
        })
    }

    /// Like [`HorizonPolicy::new`], with `window` clamped into bounds.
    pub fn with_window(window: u64) -> Self {
        let window = window.clamp(1, MAX_HORIZON_WINDOW);
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
    /// The gate's colour.
    pub colour: Colour,
    /// The gate's watermark, if it is active (connected, neither idle nor
    /// finished, with a watermark below the end of input).
    pub active_watermark: Option<Key>,
    /// The last real watermark of a finished gate (below the end of input).
    pub finished_watermark: Option<Key>,
    /// Whether the gate finished its input.
    pub finished: bool,
    /// Lowest key it holds, if it is connected and holds any.
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
    // Per colour: the slowest active gate (the job's watermark), and the
    // furthest finished one.
    let mut job: [Option<Key>; 2] = [None, None];
    let mut finished: [Option<Key>; 2] = [None, None];
    let mut lowest_held: Option<Key> = None;
    let mut near_held = Key::MIN;
    let mut far_held: Option<Key> = None;
    let mut all_finished = true;
    let near_limit = current.saturating_add(policy.window);
    for signal in signals {
        all_finished &= signal.finished;
        let slot = usize::from(signal.colour == Colour::Green);
        if let Some(watermark) = signal.active_watermark {
            job[slot] = Some(job[slot].map_or(watermark, |w| w.min(watermark)));
        }
        if let Some(watermark) = signal.finished_watermark {
            finished[slot] = Some(finished[slot].map_or(watermark, |w| w.max(watermark)));
        }
        if let Some(held) = signal.lowest_held {
            lowest_held = Some(lowest_held.map_or(held, |l| l.min(held)));
            if held < near_limit {
                near_held = near_held.max(held);
            } else {
                far_held = Some(far_held.map_or(held, |f| f.min(held)));
            }
        }
    }
    let leading = job
        .into_iter()
        .zip(finished)
        .filter_map(|(active, finished)| active.or(finished))
        .max()
        .unwrap_or(Key::MIN);
    let proposed = if current == Key::MIN {
        // Bootstrap: the first fence goes one window past the leading job,
        // or past the lowest held key if no job has a watermark yet.
        let base = if leading > Key::MIN {
            leading
        } else {
            lowest_held?
        };
        base.saturating_add(policy.window)
    } else {
        let mut frontier = leading.max(near_held);
        if all_finished && let Some(far) = far_held {
            frontier = frontier.max(far);
        }
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
        colour_wm(Colour::Green, watermark)
    }

    fn colour_wm(colour: Colour, watermark: i64) -> HorizonSignal {
        HorizonSignal {
            colour,
            active_watermark: (watermark > i64::MIN).then_some(Key(watermark)),
            finished_watermark: None,
            finished: false,
            lowest_held: None,
        }
    }

    fn held(watermark: i64, key: i64) -> HorizonSignal {
        HorizonSignal {
            lowest_held: Some(Key(key)),
            ..wm(watermark)
        }
    }

    fn inactive() -> HorizonSignal {
        HorizonSignal {
            colour: Colour::Blue,
            active_watermark: None,
            finished_watermark: None,
            finished: false,
            lowest_held: None,
        }
    }

    fn finished(colour: Colour, watermark: i64) -> HorizonSignal {
        HorizonSignal {
            finished_watermark: Some(Key(watermark)),
            finished: true,
            ..inactive_of(colour)
        }
    }

    fn inactive_of(colour: Colour) -> HorizonSignal {
        HorizonSignal {
            colour,
            ..inactive()
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
                "bootstrap from the job's slowest gate",
                i64::MIN,
                vec![wm(1000), wm(900)],
                None,
                Some(1000),
            ),
            (
                "bootstrap from the leading job",
                i64::MIN,
                vec![wm(1000), colour_wm(Colour::Blue, 300)],
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
                "the leading job moves it, a job catching up does not hold it back",
                1000,
                vec![wm(950), wm(990), colour_wm(Colour::Blue, -50_000)],
                None,
                Some(1050),
            ),
            (
                "one subtask far ahead of its job does not move it",
                1000,
                vec![wm(700), wm(4_102_444_800_000), wm(720)],
                None,
                None,
            ),
            (
                "gates that are idle, finished or without a watermark do not count",
                1000,
                vec![wm(700), inactive(), inactive()],
                None,
                None,
            ),
            ("no active gate at all", 1000, vec![inactive()], None, None),
            (
                "a finished gate does not count while its job has active ones",
                1000,
                vec![wm(700), finished(Colour::Green, 990)],
                None,
                None,
            ),
            (
                "every gate finished: a held key far ahead counts",
                1000,
                vec![HorizonSignal {
                    lowest_held: Some(Key(9_000_000)),
                    ..finished(Colour::Green, 990)
                }],
                None,
                Some(9_000_100),
            ),
            (
                "a held key far ahead does not count while a gate runs",
                1000,
                vec![
                    HorizonSignal {
                        lowest_held: Some(Key(9_000_000)),
                        ..finished(Colour::Green, 990)
                    },
                    colour_wm(Colour::Blue, 10),
                ],
                None,
                Some(1090),
            ),
            (
                "a job whose gates all finished is as far as the furthest",
                1000,
                vec![
                    finished(Colour::Green, 980),
                    finished(Colour::Green, 990),
                    colour_wm(Colour::Blue, 10),
                ],
                None,
                Some(1090),
            ),
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
