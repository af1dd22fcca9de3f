//! The tail of a plan: what a gate needs to decide the keys it sees most
//! (horizon and the last two regions of the timeline, per colour), as a
//! gate's own copy ([`Tail`]) and as a [`TailCell`] the client publishes
//! on every plan it installs, in memory a reader outside Rust (the JVM
//! gate) reads without a call: sixteen 64-bit words under a sequence
//! counter (a seqlock), laid out as [`TailCell`] documents.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering, fence};

use cutover_core::{Colour, Decision, Key, Mode, Plan};

/// What `decide` needs of a plan for the keys it sees most: those near the
/// end of the timeline. Copied out of the plan each time the plan changes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tail {
    /// Address of the plan it was copied from (0: no plan). The gate's
    /// cache keeps that plan alive until it loads another, so a new plan
    /// never shares the address.
    pub(crate) plan: usize,
    /// Keys at or above it are held.
    horizon: i64,
    /// Start of the highest region (the last segment, clipped at the
    /// colour's retirement floor), and the decision in it.
    last_start: i64,
    last: Decision,
    /// Start of the region before it (`i64::MIN` covers all older keys;
    /// `i64::MAX`: none), and the decision in it.
    before_start: i64,
    before: Decision,
}

impl Tail {
    pub(crate) const NONE: Tail = Tail {
        plan: 0,
        horizon: i64::MIN,
        last_start: i64::MIN,
        last: Decision::Hold,
        before_start: i64::MIN,
        before: Decision::Hold,
    };

    pub(crate) fn of(plan: Option<&Arc<Plan>>, colour: Colour) -> Tail {
        let Some(plan) = plan else { return Tail::NONE };
        let decision = |owner: Colour| {
            if owner == colour {
                Decision::Emit
            } else {
                Decision::Drop
            }
        };
        // The two highest regions of keys with one decision, segments
        // clipped at this colour's retirement floor (below it: Drop).
        let floor = plan.retired.of(colour).0;
        let mut regions = [(i64::MAX, Decision::Hold); 2];
        let mut count = 0;
        for segment in plan.timeline.segments().iter().rev() {
            if count == regions.len() {
                break;
            }
            regions[count] = (segment.start.0.max(floor), decision(segment.owner));
            count += 1;
            if segment.start.0 <= floor {
                if floor > i64::MIN && count < regions.len() {
                    regions[count] = (i64::MIN, Decision::Drop);
                }
                break;
            }
        }
        Tail {
            plan: Arc::as_ptr(plan) as usize,
            horizon: plan.horizon.0,
            last_start: regions[0].0,
            last: regions[0].1,
            before_start: regions[1].0,
            before: regions[1].1,
        }
    }

    /// The decision for `key`, or `None` for keys older than the tail.
    #[inline]
    pub(crate) fn decide(&self, key: Key) -> Option<Decision> {
        if key.0 >= self.horizon {
            Some(Decision::Hold)
        } else if key.0 >= self.last_start {
            Some(self.last)
        } else if key.0 >= self.before_start {
            Some(self.before)
        } else {
            None
        }
    }
}

/// Word indices of a [`TailCell`] (each an `i64`, native byte order).
pub mod words {
    /// Sequence counter: odd while the writer changes the other words.
    pub const SEQUENCE: usize = 0;
    /// Epoch of the plan (`-1`: none yet).
    pub const EPOCH: usize = 1;
    /// 0: no plan yet, 1: EVENT_TIME, 2: WATERMARK.
    pub const MODE: usize = 2;
    /// Keys at or above it are held.
    pub const HORIZON: usize = 3;
    /// First word of a colour's regions: BLUE at 4, GREEN at 8; then
    /// `+0` start of the last region, `+1` its decision, `+2` start of the
    /// region before (`i64::MIN`: every older key; `i64::MAX`: none), `+3`
    /// its decision. Decisions: 0 emit, 1 drop, 2 hold. Keys below the
    /// region before are not covered: ask the plan.
    pub const fn regions(blue: bool) -> usize {
        if blue { 4 } else { 8 }
    }
    /// Words in a cell (the rest are reserved, zero).
    pub const COUNT: usize = 16;
}

/// The decision code a reader outside Rust sees.
fn code(decision: Decision) -> i64 {
    match decision {
        Decision::Emit => 0,
        Decision::Drop => 1,
        Decision::Hold => 2,
    }
}

fn decision(code: i64) -> Decision {
    match code {
        0 => Decision::Emit,
        1 => Decision::Drop,
        _ => Decision::Hold,
    }
}

/// A plan's tail published for readers that take no lock and make no call:
/// the session task writes it on every installed plan (one writer); any
/// number of readers read it consistently with [`TailCell::read`], or as
/// raw memory ([`TailCell::as_ptr`]) with the same protocol: read the
/// sequence with acquire ordering, retry while odd, read the words, an
/// acquire fence, read the sequence again, retry if it changed.
pub struct TailCell {
    words: Box<[AtomicI64; words::COUNT]>,
}

/// A consistent copy of a [`TailCell`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailSnapshot {
    /// The words, as read.
    pub words: [i64; words::COUNT],
}

impl TailSnapshot {
    /// The decision for `key` by `colour`'s gates, or `None` for keys older
    /// than the tail (ask the plan).
    pub fn decide(&self, colour: Colour, key: Key) -> Option<Decision> {
        let w = &self.words;
        let base = words::regions(colour == Colour::Blue);
        if key.0 >= w[words::HORIZON] {
            Some(Decision::Hold)
        } else if key.0 >= w[base] {
            Some(decision(w[base + 1]))
        } else if key.0 >= w[base + 2] {
            Some(decision(w[base + 3]))
        } else {
            None
        }
    }

    /// The epoch of the plan it was taken from, if any.
    pub fn epoch(&self) -> Option<u64> {
        u64::try_from(self.words[words::EPOCH]).ok()
    }
}

impl Default for TailCell {
    fn default() -> Self {
        Self::new()
    }
}

impl TailCell {
    /// A cell holding no plan: every key is held.
    pub fn new() -> Self {
        let words: Box<[AtomicI64; words::COUNT]> =
            Box::new(std::array::from_fn(|_| AtomicI64::new(0)));
        let cell = TailCell { words };
        cell.write(&Self::words_of(None));
        cell
    }

    fn words_of(plan: Option<&Arc<Plan>>) -> [i64; words::COUNT] {
        let mut w = [0i64; words::COUNT];
        w[words::EPOCH] = plan.map_or(-1, |p| i64::try_from(p.epoch.0).unwrap_or(i64::MAX));
        w[words::MODE] = match plan.map(|p| p.mode) {
            None => 0,
            Some(Mode::EventTime) => 1,
            Some(Mode::Watermark) => 2,
        };
        for colour in Colour::ALL {
            let tail = Tail::of(plan, colour);
            w[words::HORIZON] = tail.horizon;
            let base = words::regions(colour == Colour::Blue);
            w[base] = tail.last_start;
            w[base + 1] = code(tail.last);
            w[base + 2] = tail.before_start;
            w[base + 3] = code(tail.before);
        }
        w
    }

    /// Publishes `plan`'s tail (one writer at a time: the session task).
    pub fn publish(&self, plan: &Arc<Plan>) {
        self.write(&Self::words_of(Some(plan)));
    }

    fn write(&self, values: &[i64; words::COUNT]) {
        let sequence = &self.words[words::SEQUENCE];
        let start = sequence.load(Ordering::Relaxed);
        sequence.store(start.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (word, value) in self.words.iter().zip(values).skip(1) {
            word.store(*value, Ordering::Relaxed);
        }
        sequence.store(start.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy (retries while the writer is at work).
    pub fn read(&self) -> TailSnapshot {
        let sequence = &self.words[words::SEQUENCE];
        loop {
            let before = sequence.load(Ordering::Acquire);
            if before % 2 != 0 {
                std::hint::spin_loop();
                continue;
            }
            let mut copy = [0i64; words::COUNT];
            for (value, word) in copy.iter_mut().zip(self.words.iter()) {
                *value = word.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if sequence.load(Ordering::Relaxed) == before {
                copy[words::SEQUENCE] = before;
                return TailSnapshot { words: copy };
            }
        }
    }

    /// The first word, for readers outside Rust (`words::COUNT` words, as
    /// long as the cell lives).
    pub fn as_ptr(&self) -> *const AtomicI64 {
        self.words.as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::{Epoch, Incarnation, Mode, RetiredBelow, Timeline};

    #[test]
    fn the_tail_decides_like_the_plan() {
        // Timelines of 1 to 4 segments with starts in 0..8, every horizon
        // and key around them, both colours: the tail (or, for older keys,
        // the plan it defers to) gives the plan's decision.
        let mut timelines = vec![Timeline::new(Colour::Green)];
        for _ in 0..3 {
            let mut longer = Vec::new();
            for t in &timelines {
                let last = t.last();
                for start in (last.start.0.max(-1) + 1)..8 {
                    if let Ok(next) = t.with_appended(Key(start), last.owner.other()) {
                        longer.push(next);
                    }
                }
            }
            timelines.extend(longer);
        }
        assert!(timelines.iter().any(|t| t.segments().len() == 4));
        for timeline in &timelines {
            for horizon in -2..10 {
                for (blue, green) in [
                    (i64::MIN, i64::MIN),
                    (2, i64::MIN),
                    (i64::MIN, 5),
                    (4, 7),
                    (horizon, horizon),
                ] {
                    let plan = Arc::new(Plan {
                        timeline: timeline.clone(),
                        horizon: Key(horizon),
                        epoch: Epoch(1),
                        mode: Mode::EventTime,
                        retired: RetiredBelow {
                            blue: Key(blue.min(horizon)),
                            green: Key(green.min(horizon)),
                        },
                        incarnation: Incarnation(1),
                        unknown: Default::default(),
                    });
                    let cell = TailCell::new();
                    cell.publish(&plan);
                    let published = cell.read();
                    assert_eq!(published.epoch(), Some(1));
                    for colour in Colour::ALL {
                        let tail = Tail::of(Some(&plan), colour);
                        for key in (-3..11).map(Key).chain([Key::MIN, Key::MAX]) {
                            let expected = plan.decide(colour, key);
                            let got = tail.decide(key).unwrap_or_else(|| plan.decide(colour, key));
                            assert_eq!(got, expected, "{timeline:?} horizon {horizon} key {key}");
                            assert_eq!(
                                published.decide(colour, key),
                                tail.decide(key),
                                "the published tail is the gate's"
                            );
                            let floor = plan.retired.of(colour);
                            if timeline.segments().len() <= 2 && floor == Key::MIN {
                                assert!(tail.decide(key).is_some(), "two segments never defer");
                            }
                            if timeline.segments().len() == 1 {
                                assert!(
                                    tail.decide(key).is_some(),
                                    "one segment and a floor never defer"
                                );
                            }
                        }
                    }
                }
            }
        }
        for key in [Key::MIN, Key(0), Key::MAX] {
            assert_eq!(Tail::NONE.decide(key), Some(Decision::Hold));
            for colour in Colour::ALL {
                assert_eq!(
                    TailCell::new().read().decide(colour, key),
                    Some(Decision::Hold)
                );
            }
        }
    }

    #[test]
    fn readers_never_see_a_torn_tail() {
        // One writer alternates two plans as fast as it can; readers on
        // other threads only ever see one or the other, whole.
        let plan = |horizon: i64, epoch: u64| {
            let timeline = Timeline::new(Colour::Green)
                .with_appended(Key(horizon / 2), Colour::Blue)
                .expect("a later segment");
            Arc::new(Plan {
                timeline,
                horizon: Key(horizon),
                epoch: Epoch(epoch),
                mode: Mode::EventTime,
                retired: RetiredBelow::default(),
                incarnation: Incarnation(1),
                unknown: Default::default(),
            })
        };
        let (a, b) = (plan(1_000, 7), plan(9_000_000, 8));
        let cell = Arc::new(TailCell::new());
        cell.publish(&a);
        let expected = |p: &Arc<Plan>| {
            let mut w = TailCell::words_of(Some(p));
            w[words::SEQUENCE] = 0;
            w
        };
        let (wa, wb) = (expected(&a), expected(&b));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (cell, stop) = (cell.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let mut seen = cell.read().words;
                        seen[words::SEQUENCE] = 0;
                        assert!(seen == wa || seen == wb, "torn: {seen:?}");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for i in 0..200_000 {
            cell.publish(if i % 2 == 0 { &b } else { &a });
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().expect("no reader panicked") > 0);
        }
    }
}
