//! The ownership timeline: sorted segments of keys, each owned by a colour.
//!
//! Invariants (checked on every construction, including deserialisation):
//! never empty, the first segment starts at `Key::MIN`, starts strictly
//! increase, and adjacent segments have different owners.

use serde::{Deserialize, Serialize};

use crate::domain::{Colour, Key};
use crate::error::CoreError;

/// Keys from `start` (inclusive) up to the next segment's start belong to
/// `owner`. A stored segment with fields this version does not know makes
/// its document unreadable (reported, never overwritten): a segment is too
/// small to carry them along safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// First key of the segment.
    pub start: Key,
    /// Colour whose gates emit records with keys in the segment.
    pub owner: Colour,
}

/// Sorted segments covering every key exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Segment>", into = "Vec<Segment>")]
pub struct Timeline {
    segments: Vec<Segment>,
}

impl Timeline {
    /// Every key owned by `owner`.
    pub fn new(owner: Colour) -> Self {
        Timeline {
            segments: vec![Segment {
                start: Key::MIN,
                owner,
            }],
        }
    }

    /// Validates segments read from outside.
    pub fn from_segments(segments: Vec<Segment>) -> Result<Self, CoreError> {
        let invalid = |reason: &str| CoreError::InvalidDocument {
            reason: format!("timeline: {reason}"),
        };
        let first = segments.first().ok_or_else(|| invalid("no segment"))?;
        if first.start != Key::MIN {
            return Err(invalid("the first segment must start at -inf"));
        }
        for pair in segments.windows(2) {
            if pair[1].start <= pair[0].start {
                return Err(invalid("segment starts must strictly increase"));
            }
            if pair[1].owner == pair[0].owner {
                return Err(invalid("adjacent segments must have different owners"));
            }
        }
        Ok(Timeline { segments })
    }

    /// The segments, sorted by start.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The last segment (owner of every key from its start on).
    pub fn last(&self) -> Segment {
        *self.segments.last().expect("a timeline is never empty")
    }

    /// The colour owning `key`.
    #[inline]
    pub fn owner_of(&self, key: Key) -> Colour {
        let last = self.last();
        if key >= last.start {
            return last.owner;
        }
        // partition_point >= 1 because segments[0].start == Key::MIN <= key.
        let index = self.segments.partition_point(|s| s.start <= key);
        self.segments[index - 1].owner
    }

    /// A copy with a segment `[at, +inf) -> owner` appended.
    pub fn with_appended(&self, at: Key, owner: Colour) -> Result<Timeline, CoreError> {
        let last = self.last();
        if at <= last.start {
            return Err(CoreError::NotAfterLastSegment {
                requested: at,
                last_start: last.start,
            });
        }
        if owner == last.owner {
            return Err(CoreError::AlreadyOwner { colour: owner });
        }
        let mut segments = self.segments.clone();
        segments.push(Segment { start: at, owner });
        Ok(Timeline { segments })
    }

    /// A copy without the last segment, which must start at `at`.
    pub fn without_last(&self, at: Key) -> Result<Timeline, CoreError> {
        if self.segments.len() < 2 || self.last().start != at {
            return Err(CoreError::InvalidDocument {
                reason: format!("timeline has no last segment starting at {at}"),
            });
        }
        let mut segments = self.segments.clone();
        segments.pop();
        Ok(Timeline { segments })
    }

    /// The lowest key in `[from, to)` whose owner differs between `self` and
    /// `other`, if any.
    pub fn first_difference_within(&self, other: &Timeline, from: Key, to: Key) -> Option<Key> {
        // Inside the range, owners only change at segment starts of either
        // timeline; `from` itself covers the segments it falls into.
        let starts = self
            .segments
            .iter()
            .chain(other.segments.iter())
            .map(|s| s.start)
            .filter(|&k| k > from && k < to);
        std::iter::once(from)
            .filter(|&k| k < to)
            .chain(starts)
            .filter(|&k| self.owner_of(k) != other.owner_of(k))
            .min()
    }

    /// A copy in which the segments that end at or below `floor` merge into
    /// the segment holding `floor`: every key below `floor` then belongs to
    /// `floor`'s owner, and keys from `floor` on keep theirs.
    pub fn compacted(&self, floor: Key) -> Timeline {
        let keep = self.segments.partition_point(|s| s.start <= floor);
        // keep >= 1: the first segment starts at Key::MIN <= floor.
        let mut segments = Vec::with_capacity(self.segments.len() + 1 - keep);
        segments.push(Segment {
            start: Key::MIN,
            owner: self.segments[keep - 1].owner,
        });
        segments.extend_from_slice(&self.segments[keep..]);
        Timeline { segments }
    }
}

impl TryFrom<Vec<Segment>> for Timeline {
    type Error = CoreError;
    fn try_from(segments: Vec<Segment>) -> Result<Self, CoreError> {
        Timeline::from_segments(segments)
    }
}

impl From<Timeline> for Vec<Segment> {
    fn from(timeline: Timeline) -> Vec<Segment> {
        timeline.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Colour::*;

    fn seg(start: i64, owner: Colour) -> Segment {
        Segment {
            start: Key(start),
            owner,
        }
    }

    #[test]
    fn owner_of_follows_segments() {
        let t = Timeline::new(Green)
            .with_appended(Key(10), Blue)
            .and_then(|t| t.with_appended(Key(20), Green))
            .expect("valid appends");
        let table = [
            (i64::MIN, Green),
            (9, Green),
            (10, Blue),
            (19, Blue),
            (20, Green),
            (i64::MAX, Green),
        ];
        for (key, owner) in table {
            assert_eq!(t.owner_of(Key(key)), owner, "key {key}");
        }
    }

    #[test]
    fn append_refuses_same_owner_and_keys_not_after_the_last_start() {
        let t = Timeline::new(Green);
        assert_eq!(
            t.with_appended(Key(5), Green),
            Err(CoreError::AlreadyOwner { colour: Green })
        );
        let t = t.with_appended(Key(5), Blue).expect("valid");
        assert!(matches!(
            t.with_appended(Key(5), Green),
            Err(CoreError::NotAfterLastSegment { .. })
        ));
        assert!(matches!(
            t.with_appended(Key(4), Green),
            Err(CoreError::NotAfterLastSegment { .. })
        ));
    }

    #[test]
    fn from_segments_checks_every_invariant() {
        assert!(Timeline::from_segments(vec![]).is_err());
        assert!(Timeline::from_segments(vec![seg(0, Green)]).is_err());
        assert!(Timeline::from_segments(vec![seg(i64::MIN, Green), seg(5, Green)]).is_err());
        assert!(
            Timeline::from_segments(vec![seg(i64::MIN, Green), seg(5, Blue), seg(5, Green)])
                .is_err()
        );
        assert!(Timeline::from_segments(vec![seg(i64::MIN, Green), seg(5, Blue)]).is_ok());
    }

    #[test]
    fn first_difference_within_finds_the_lowest_changed_key_in_range() {
        let a = Timeline::new(Green);
        let b = a.with_appended(Key(7), Blue).expect("valid");
        let all = |x: &Timeline, y: &Timeline| x.first_difference_within(y, Key::MIN, Key::MAX);
        assert_eq!(all(&a, &a), None);
        assert_eq!(all(&a, &b), Some(Key(7)));
        assert_eq!(a.first_difference_within(&b, Key(9), Key(12)), Some(Key(9)));
        assert_eq!(a.first_difference_within(&b, Key(0), Key(7)), None);
        assert_eq!(a.first_difference_within(&b, Key(7), Key(7)), None);
        assert_eq!(b.without_last(Key(7)).expect("valid"), a);
    }

    #[test]
    fn compaction_merges_segments_below_the_floor_into_the_one_holding_it() {
        let t = Timeline::from_segments(vec![
            seg(i64::MIN, Green),
            seg(10, Blue),
            seg(20, Green),
            seg(30, Blue),
        ])
        .expect("valid");
        let table: [(i64, &[(i64, Colour)]); 6] = [
            (
                i64::MIN,
                &[(i64::MIN, Green), (10, Blue), (20, Green), (30, Blue)],
            ),
            (9, &[(i64::MIN, Green), (10, Blue), (20, Green), (30, Blue)]),
            (10, &[(i64::MIN, Blue), (20, Green), (30, Blue)]),
            (25, &[(i64::MIN, Green), (30, Blue)]),
            (30, &[(i64::MIN, Blue)]),
            (i64::MAX, &[(i64::MIN, Blue)]),
        ];
        for (floor, expected) in table {
            let expected: Vec<Segment> = expected.iter().map(|&(k, c)| seg(k, c)).collect();
            let compacted = t.compacted(Key(floor));
            assert_eq!(compacted.segments(), &expected[..], "floor {floor}");
            assert_eq!(
                t.first_difference_within(&compacted, Key(floor), Key::MAX),
                None,
                "owners from floor {floor} on are kept"
            );
            assert!(Timeline::from_segments(expected).is_ok());
        }
    }

    #[test]
    fn serde_rejects_invalid_timelines() {
        let bad = r#"[{"start":5,"owner":"BLUE"}]"#;
        assert!(serde_json::from_str::<Timeline>(bad).is_err());
        let good = r#"[{"start":-9223372036854775808,"owner":"BLUE"}]"#;
        assert_eq!(
            serde_json::from_str::<Timeline>(good).expect("valid"),
            Timeline::new(Blue)
        );
    }
}
