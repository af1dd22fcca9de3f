//! A plan: what a gate needs to decide a record — the timeline, the horizon,
//! the epoch and the decision mode — and the decision itself.

use serde::{Deserialize, Serialize};

use crate::domain::{Colour, Epoch, Key, Mode};
use crate::timeline::Timeline;

/// What a gate does with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The gate's colour owns the key: pass the record on to the sink.
    Emit,
    /// The other colour owns the key: discard the record.
    Drop,
    /// The key is at or above the horizon: keep the record until a higher
    /// horizon makes it decidable.
    Hold,
}

/// The ownership timeline with its fence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Who owns which keys.
    pub timeline: Timeline,
    /// Keys strictly below it are fixed for good.
    pub horizon: Key,
    /// Version of the document this plan belongs to.
    pub epoch: Epoch,
    /// The key kind gates decide on.
    pub mode: Mode,
}

impl Plan {
    /// A fresh plan: every key owned by `owner`, nothing decidable yet.
    pub fn new(owner: Colour) -> Self {
        Plan {
            timeline: Timeline::new(owner),
            horizon: Key::MIN,
            epoch: Epoch(1),
            mode: Mode::EventTime,
        }
    }

    /// What a gate of `colour` does with a record at `key`.
    #[inline]
    pub fn decide(&self, colour: Colour, key: Key) -> Decision {
        if key >= self.horizon {
            Decision::Hold
        } else if self.timeline.owner_of(key) == colour {
            Decision::Emit
        } else {
            Decision::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decide_exhaustively_over_a_small_domain() {
        // Every timeline with up to two cutovers in 0..6, every horizon and key
        // in -1..7, both colours: the decision follows the definition.
        for c1 in 0..6i64 {
            for c2 in (c1 + 1)..7 {
                let timeline = Timeline::new(Colour::Green)
                    .with_appended(Key(c1), Colour::Blue)
                    .and_then(|t| t.with_appended(Key(c2), Colour::Green))
                    .expect("valid");
                for h in -1..8 {
                    let plan = Plan {
                        timeline: timeline.clone(),
                        horizon: Key(h),
                        epoch: Epoch(1),
                        mode: Mode::EventTime,
                    };
                    for k in -1..8 {
                        let owner = if (c1..c2).contains(&k) {
                            Colour::Blue
                        } else {
                            Colour::Green
                        };
                        for colour in Colour::ALL {
                            let expected = if k >= h {
                                Decision::Hold
                            } else if owner == colour {
                                Decision::Emit
                            } else {
                                Decision::Drop
                            };
                            assert_eq!(plan.decide(colour, Key(k)), expected);
                        }
                        // Below the horizon exactly one colour emits.
                        if k < h {
                            let emits = Colour::ALL
                                .iter()
                                .filter(|&&c| plan.decide(c, Key(k)) == Decision::Emit)
                                .count();
                            assert_eq!(emits, 1);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_fresh_plan_holds_everything() {
        let plan = Plan::new(Colour::Blue);
        assert_eq!(plan.decide(Colour::Blue, Key::MIN), Decision::Hold);
        assert_eq!(plan.decide(Colour::Green, Key(0)), Decision::Hold);
    }
}
