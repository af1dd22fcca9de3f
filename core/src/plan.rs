//! A plan: what a gate needs to decide a record — the timeline, the horizon,
//! the keys each colour has retired, the epoch and the decision mode — and
//! the decision itself.

use serde::{Deserialize, Serialize};

use crate::document::UnknownFields;
use crate::domain::{Colour, Epoch, Incarnation, Key, Mode};
use crate::timeline::Timeline;

/// Per colour, the key below which that colour never emits again: keys a
/// stopped job of the colour already decided (a later job of the colour
/// must not emit them a second time), or keys no running job of the colour
/// can decide again. Retired keys never come back (see `fence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredBelow {
    /// BLUE never emits a key below this.
    #[serde(rename = "BLUE")]
    pub blue: Key,
    /// GREEN never emits a key below this.
    #[serde(rename = "GREEN")]
    pub green: Key,
}

impl Default for RetiredBelow {
    fn default() -> Self {
        RetiredBelow::NONE
    }
}

impl RetiredBelow {
    /// Nothing retired.
    pub const NONE: RetiredBelow = RetiredBelow {
        blue: Key::MIN,
        green: Key::MIN,
    };

    /// The floor of `colour`.
    #[inline]
    pub fn of(&self, colour: Colour) -> Key {
        match colour {
            Colour::Blue => self.blue,
            Colour::Green => self.green,
        }
    }

    /// Raises the floor of `colour` to `key` (never lowers it).
    pub fn raise(&mut self, colour: Colour, key: Key) {
        let floor = match colour {
            Colour::Blue => &mut self.blue,
            Colour::Green => &mut self.green,
        };
        *floor = (*floor).max(key);
    }

    /// The lower of the two floors: below it no colour emits.
    pub fn lowest(&self) -> Key {
        self.blue.min(self.green)
    }
}

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
    /// Keys each colour has retired.
    #[serde(default)]
    pub retired: RetiredBelow,
    /// The pipeline's incarnation: epochs compare only within one.
    #[serde(default)]
    pub incarnation: Incarnation,
    /// Fields a newer version wrote; kept on every write.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl Plan {
    /// A fresh plan of `incarnation`: every key owned by `owner`, nothing
    /// decidable yet.
    pub fn new(owner: Colour, incarnation: Incarnation) -> Self {
        Plan {
            timeline: Timeline::new(owner),
            horizon: Key::MIN,
            epoch: Epoch(1),
            mode: Mode::EventTime,
            retired: RetiredBelow::NONE,
            incarnation,
            unknown: UnknownFields::new(),
        }
    }

    /// The colour whose gates emit `key`, if any: its owner, unless the
    /// owner retired it. Ignores the horizon.
    pub fn emitter(&self, key: Key) -> Option<Colour> {
        let owner = self.timeline.owner_of(key);
        (key >= self.retired.of(owner)).then_some(owner)
    }

    /// What a gate of `colour` does with a record at `key`.
    #[inline]
    pub fn decide(&self, colour: Colour, key: Key) -> Decision {
        if key >= self.horizon {
            Decision::Hold
        } else if key < self.retired.of(colour) {
            Decision::Drop
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
                    for (rb, rg) in [(-1, -1), (c1, -1), (-1, c2), (c2, c1), (h, h)] {
                        let plan = Plan {
                            timeline: timeline.clone(),
                            horizon: Key(h),
                            epoch: Epoch(1),
                            mode: Mode::EventTime,
                            retired: RetiredBelow {
                                blue: Key(rb),
                                green: Key(rg),
                            },
                            incarnation: Incarnation(1),
                            unknown: UnknownFields::new(),
                        };
                        for k in -1..8 {
                            let owner = if (c1..c2).contains(&k) {
                                Colour::Blue
                            } else {
                                Colour::Green
                            };
                            for colour in Colour::ALL {
                                let floor = if colour == Colour::Blue { rb } else { rg };
                                let expected = if k >= h {
                                    Decision::Hold
                                } else if k >= floor && owner == colour {
                                    Decision::Emit
                                } else {
                                    Decision::Drop
                                };
                                assert_eq!(plan.decide(colour, Key(k)), expected);
                            }
                            // Below the horizon at most one colour emits: the
                            // emitter, if the owner has not retired the key.
                            if k < h {
                                let emits: Vec<Colour> = Colour::ALL
                                    .into_iter()
                                    .filter(|&c| plan.decide(c, Key(k)) == Decision::Emit)
                                    .collect();
                                assert_eq!(
                                    emits,
                                    plan.emitter(Key(k)).into_iter().collect::<Vec<_>>()
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_fresh_plan_holds_everything() {
        let plan = Plan::new(Colour::Blue, Incarnation(7));
        assert_eq!(plan.decide(Colour::Blue, Key::MIN), Decision::Hold);
        assert_eq!(plan.decide(Colour::Green, Key(0)), Decision::Hold);
    }
}
