//! Domain newtypes shared by every part of cutover: keys, epochs, colours,
//! decision modes and pipeline names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

/// The number a gate decides a record on: its event timestamp (EVENT_TIME
/// mode) or the gate's current watermark (WATERMARK mode). `Key::MIN` stands
/// for minus infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Key(pub i64);

impl Key {
    /// Minus infinity: the start of the first segment, and the horizon of a
    /// pipeline no gate has reported progress for.
    pub const MIN: Key = Key(i64::MIN);
    /// Plus infinity.
    pub const MAX: Key = Key(i64::MAX);

    /// `self + delta`, saturating at `Key::MAX`.
    pub fn saturating_add(self, delta: u64) -> Key {
        Key(self.0.saturating_add_unsigned(delta))
    }

    /// `self - delta`, saturating at `Key::MIN`.
    pub fn saturating_sub(self, delta: u64) -> Key {
        Key(self.0.saturating_sub_unsigned(delta))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Key::MIN => f.write_str("-inf"),
            Key::MAX => f.write_str("+inf"),
            Key(k) => write!(f, "{k}"),
        }
    }
}

/// Version of a pipeline's plan document: grows by one with every change
/// (segment added or removed, horizon raised, transition state changed).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The next epoch.
    pub fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identity of one incarnation of a pipeline: chosen at random when the
/// pipeline is created, kept for its whole life. A pipeline deleted and
/// created again under the same name starts its epochs over at 1 under a new
/// incarnation, so a client compares epochs only within one incarnation and
/// replaces a plan of another incarnation whatever its epoch. `0` is the
/// incarnation of documents written before incarnations existed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Incarnation(pub u64);

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One of the two deployments of a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Colour {
    /// The blue deployment.
    Blue,
    /// The green deployment.
    Green,
}

impl Colour {
    /// The other colour.
    pub fn other(self) -> Colour {
        match self {
            Colour::Blue => Colour::Green,
            Colour::Green => Colour::Blue,
        }
    }

    /// Both colours, blue first.
    pub const ALL: [Colour; 2] = [Colour::Blue, Colour::Green];
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Colour::Blue => "BLUE",
            Colour::Green => "GREEN",
        })
    }
}

impl std::str::FromStr for Colour {
    type Err = CoreError;

    /// `BLUE` or `GREEN`, in any case.
    fn from_str(name: &str) -> Result<Colour, CoreError> {
        if name.eq_ignore_ascii_case("BLUE") {
            Ok(Colour::Blue)
        } else if name.eq_ignore_ascii_case("GREEN") {
            Ok(Colour::Green)
        } else {
            Err(CoreError::InvalidColour {
                given: name.chars().take(80).collect(),
            })
        }
    }
}

/// Which number of a record the gates of a pipeline decide on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// The record's event timestamp: exactly one colour emits each record.
    #[default]
    EventTime,
    /// The gate's current watermark (FLIP-504 compatible): weaker, a record
    /// near the cutover may be emitted twice or never.
    Watermark,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::EventTime => "EVENT_TIME",
            Mode::Watermark => "WATERMARK",
        })
    }
}

/// A validated pipeline name: 1 to 63 characters of `a-z`, `0-9` and `-`,
/// starting and ending with a letter or digit (a DNS label, so it can name a
/// ConfigMap or an etcd key unchanged).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PipelineName(String);

impl PipelineName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, CoreError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > 63 {
            Some("must be at most 63 characters")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Some("may hold only lower-case letters, digits and '-'")
        } else if name.starts_with('-') || name.ends_with('-') {
            Some("must start and end with a letter or digit")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoreError::InvalidPipelineName {
                name: name.chars().take(80).collect(),
                reason,
            }),
            None => Ok(PipelineName(name)),
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PipelineName {
    type Error = CoreError;
    fn try_from(name: String) -> Result<Self, CoreError> {
        PipelineName::new(name)
    }
}

impl From<PipelineName> for String {
    fn from(name: PipelineName) -> String {
        name.0
    }
}

impl fmt::Display for PipelineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_names_follow_dns_label_rules() {
        for good in ["a", "orders", "orders-v2", "0", &"a".repeat(63)] {
            assert!(PipelineName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Orders", "-a", "a-", "a_b", "a.b", &"a".repeat(64), "ä"] {
            assert!(PipelineName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colour_names_parse_in_any_case_and_round_trip() {
        for colour in Colour::ALL {
            assert_eq!(colour.to_string().parse::<Colour>(), Ok(colour));
        }
        assert_eq!("green".parse::<Colour>(), Ok(Colour::Green));
        assert_eq!("Blue".parse::<Colour>(), Ok(Colour::Blue));
        for bad in ["", "PURPLE", "blue ", "BLUEGREEN"] {
            assert_eq!(
                bad.parse::<Colour>(),
                Err(CoreError::InvalidColour { given: bad.into() })
            );
        }
    }

    #[test]
    fn key_arithmetic_saturates() {
        assert_eq!(Key::MAX.saturating_add(5), Key::MAX);
        assert_eq!(Key::MIN.saturating_sub(5), Key::MIN);
        assert_eq!(Key(10).saturating_add(5), Key(15));
        assert_eq!(Key::MIN.to_string(), "-inf");
    }
}
