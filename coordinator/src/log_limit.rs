//! Logging a repeated failure once per interval with a count, instead of
//! once per occurrence: a store watch failing in a loop (a corrupt document,
//! no file descriptors left) must not fill the disk with warnings.

use std::time::{Duration, Instant};

/// Decides when a failure that repeats is worth a log line. Pure: the
/// caller passes the time.
#[derive(Debug)]
pub struct RepeatLimiter {
    interval: Duration,
    last: Option<(Instant, String)>,
    suppressed: u64,
}

/// What to log for one occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it, saying how many like it were left out since the last line.
    Log {
        /// Occurrences not logged since the last line.
        suppressed: u64,
    },
    /// Leave it out (counted).
    Suppress,
}

impl RepeatLimiter {
    /// At most one line per `interval` for the same message.
    pub fn new(interval: Duration) -> Self {
        RepeatLimiter {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// An occurrence of `message` at `now`.
    pub fn occurred(&mut self, message: &str, now: Instant) -> Verdict {
        match &self.last {
            Some((at, last)) if last == message && now.duration_since(*at) < self.interval => {
                self.suppressed += 1;
                Verdict::Suppress
            }
            _ => {
                let suppressed = std::mem::take(&mut self.suppressed);
                self.last = Some((now, message.to_string()));
                Verdict::Log { suppressed }
            }
        }
    }

    /// The failure is over: the next occurrence is logged at once.
    pub fn reset(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_message_is_logged_once_per_interval_with_a_count() {
        let start = Instant::now();
        let mut limiter = RepeatLimiter::new(Duration::from_secs(30));
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(
            limiter.occurred("eof", at(0)),
            Verdict::Log { suppressed: 0 }
        );
        let mut logged = 0;
        for ms in 1..=45_000 {
            if matches!(limiter.occurred("eof", at(ms)), Verdict::Log { .. }) {
                logged += 1;
            }
        }
        assert_eq!(logged, 1, "one more line at 30 s");
        assert_eq!(
            limiter.occurred("eof", at(60_000)),
            Verdict::Log { suppressed: 15_000 }
        );
        // Another message is news.
        assert_eq!(
            limiter.occurred("other", at(60_001)),
            Verdict::Log { suppressed: 0 }
        );
        assert_eq!(limiter.reset(), 0);
        assert_eq!(
            limiter.occurred("other", at(60_002)),
            Verdict::Log { suppressed: 0 }
        );
    }
}
