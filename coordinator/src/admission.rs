//! Per-caller limits: how many gate sessions one caller holds at once, and
//! how fast it may call the mutating control methods. A caller is its
//! authenticated identity, or its IP address when it has none. Both limits
//! answer `RESOURCE_EXHAUSTED` with a message naming the caller and the
//! limit, before anything of the call happens.
//!
//! The session count is a guard that gives its slot back when dropped (the
//! session ended, however it ended). The call rate is a token bucket per
//! caller; buckets that are full again are forgotten, so callers that come
//! and go cost nothing once they are quiet. Beside them, failed
//! authentications (UNAUTHENTICATED) are counted per IP address: an address
//! refused [`REFUSAL_BURST`] times in a row is turned away before its
//! credentials are even checked (a bearer token may cost a TokenReview)
//! until its allowance refills at [`REFUSAL_RATE`] per second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::Status;

/// The limits (see the `cutover serve` flags of the same names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallerLimits {
    /// Gate sessions one caller may hold at once; 0 for no limit.
    pub max_sessions_per_caller: usize,
    /// Mutating control calls one caller may make per second, on average;
    /// 0 for no limit.
    pub control_calls_per_second: f64,
    /// Mutating control calls one caller may make at once after a quiet
    /// period (the bucket's size).
    pub control_burst: u32,
}

impl Default for CallerLimits {
    fn default() -> Self {
        CallerLimits {
            max_sessions_per_caller: 1024,
            control_calls_per_second: 100.0,
            control_burst: 200,
        }
    }
}

impl CallerLimits {
    /// No per-caller limit: for a load generator that opens every session
    /// from one address.
    pub fn none() -> Self {
        CallerLimits {
            max_sessions_per_caller: 0,
            control_calls_per_second: 0.0,
            control_burst: 1,
        }
    }
}

/// Who a call is counted against: its identity, else its address.
pub fn caller_key(identity: Option<&str>, peer: Option<SocketAddr>) -> String {
    match (identity, peer) {
        (Some(identity), _) => identity.to_string(),
        (None, Some(peer)) => peer.ip().to_string(),
        (None, None) => "unknown".to_string(),
    }
}

/// An address as refusals count it: its IP.
pub fn address_key(peer: Option<SocketAddr>) -> String {
    caller_key(None, peer)
}

/// The limits in force and what each caller uses of them.
#[derive(Debug)]
pub struct Admission {
    limits: CallerLimits,
    sessions: Mutex<HashMap<String, usize>>,
    calls: Mutex<HashMap<String, TokenBucket>>,
    refusals: Mutex<HashMap<String, TokenBucket>>,
}

/// A gate session's place in its caller's count; given back on drop.
#[derive(Debug)]
pub struct SessionSlot {
    admission: Arc<Admission>,
    caller: String,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.admission.sessions.lock()
            && let Some(count) = sessions.get_mut(&self.caller)
        {
            *count -= 1;
            if *count == 0 {
                sessions.remove(&self.caller);
            }
        }
    }
}

/// Buckets kept before full ones are swept out.
const SWEEP_ABOVE: usize = 4096;

/// Refusals one address may collect at once.
pub const REFUSAL_BURST: u32 = 50;

/// Refusals per second an address's allowance refills at.
pub const REFUSAL_RATE: f64 = 5.0;

impl Admission {
    /// Limits `limits`, nothing used yet.
    pub fn new(limits: CallerLimits) -> Arc<Self> {
        Arc::new(Admission {
            limits,
            sessions: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            refusals: Mutex::new(HashMap::new()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> CallerLimits {
        self.limits
    }

    /// A session slot for `caller`, or `RESOURCE_EXHAUSTED` when it holds
    /// as many sessions as it may.
    pub fn open_session(self: &Arc<Self>, caller: String) -> Result<SessionSlot, Status> {
        let max = self.limits.max_sessions_per_caller;
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| Status::internal("session counts unavailable"))?;
        let count = sessions.entry(caller.clone()).or_insert(0);
        if max > 0 && *count >= max {
            return Err(Status::resource_exhausted(format!(
                "{caller} already holds {count} gate sessions, the most one caller may \
                 (--max-sessions-per-caller); close one or carry more gates per session"
            )));
        }
        *count += 1;
        Ok(SessionSlot {
            admission: self.clone(),
            caller,
        })
    }

    /// Sessions `caller` holds now.
    pub fn sessions_of(&self, caller: &str) -> usize {
        self.sessions
            .lock()
            .map(|s| s.get(caller).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Takes one mutating call from `caller`'s allowance at `now`, or
    /// `RESOURCE_EXHAUSTED` saying when the next one is allowed.
    pub fn take_call(&self, caller: &str, now: Instant) -> Result<(), Status> {
        let rate = self.limits.control_calls_per_second;
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(self.limits.control_burst.max(1));
        take(&self.calls, caller, now, rate, burst).map_err(|wait| {
            Status::resource_exhausted(format!(
                "{caller} made more mutating control calls than it may ({rate}/s, bursts of \
                 {burst}; --control-rate, --control-burst); retry in {} ms",
                wait.as_millis().max(1)
            ))
        })
    }

    /// Whether `address` may still be heard (it has not collected its
    /// allowance of refusals); `RESOURCE_EXHAUSTED` otherwise.
    pub fn check_refusals(&self, address: &str, now: Instant) -> Result<(), Status> {
        let Ok(refusals) = self.refusals.lock() else {
            return Ok(());
        };
        match refusals.get(address) {
            Some(bucket) if bucket.refilled(now, REFUSAL_RATE, f64::from(REFUSAL_BURST)) < 1.0 => {
                Err(Status::resource_exhausted(format!(
                    "{address} was refused {REFUSAL_BURST} times in a row; slow down"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Counts a refusal of a call from `address`.
    pub fn count_refusal(&self, address: &str, now: Instant) {
        let _ = take(
            &self.refusals,
            address,
            now,
            REFUSAL_RATE,
            f64::from(REFUSAL_BURST),
        );
    }
}

/// Takes one token from `key`'s bucket in `buckets`, or how long until one
/// is there.
fn take(
    buckets: &Mutex<HashMap<String, TokenBucket>>,
    key: &str,
    now: Instant,
    rate: f64,
    burst: f64,
) -> Result<(), Duration> {
    let Ok(mut buckets) = buckets.lock() else {
        return Ok(());
    };
    if buckets.len() > SWEEP_ABOVE {
        buckets.retain(|_, bucket| !bucket.is_full(now, rate, burst));
    }
    buckets
        .entry(key.to_string())
        .or_insert_with(|| TokenBucket::full(burst, now))
        .take(now, rate, burst)
}

/// A token bucket: `tokens` left at `updated`, refilled at the rate.
#[derive(Clone, Copy, Debug)]
struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn full(burst: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: burst,
            updated: now,
        }
    }

    fn refilled(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }

    fn is_full(&self, now: Instant, rate: f64, burst: f64) -> bool {
        self.refilled(now, rate, burst) >= burst
    }

    /// One token, or how long until one is there.
    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> Result<(), Duration> {
        self.tokens = self.refilled(now, rate, burst);
        self.updated = now.max(self.updated);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::try_from_secs_f64((1.0 - self.tokens) / rate).unwrap_or(Duration::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(sessions: usize, rate: f64, burst: u32) -> Arc<Admission> {
        Admission::new(CallerLimits {
            max_sessions_per_caller: sessions,
            control_calls_per_second: rate,
            control_burst: burst,
        })
    }

    #[test]
    fn sessions_are_counted_per_caller_and_given_back_on_drop() {
        let admission = limits(2, 0.0, 1);
        let a1 = admission.open_session("a".into()).expect("first");
        let _a2 = admission.open_session("a".into()).expect("second");
        let refused = admission.open_session("a".into()).expect_err("third");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("a already holds 2"),
            "{refused:?}"
        );
        // Another caller has its own count.
        let _b = admission.open_session("b".into()).expect("another caller");
        drop(a1);
        assert_eq!(admission.sessions_of("a"), 1);
        let _a3 = admission
            .open_session("a".into())
            .expect("a slot given back");
    }

    #[test]
    fn no_session_limit_at_zero() {
        let admission = limits(0, 0.0, 1);
        let slots: Vec<_> = (0..10_000)
            .map(|_| admission.open_session("a".into()).expect("unlimited"))
            .collect();
        assert_eq!(admission.sessions_of("a"), 10_000);
        drop(slots);
        assert_eq!(admission.sessions_of("a"), 0);
    }

    #[test]
    fn calls_are_limited_to_the_burst_then_the_rate() {
        let admission = limits(0, 10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            admission.take_call("op", start).expect("within the burst");
        }
        let refused = admission.take_call("op", start).expect_err("burst spent");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("retry in 100 ms"), "{refused:?}");
        // Another caller is not held back.
        admission.take_call("other", start).expect("own bucket");
        // A tenth of a second later one more call is allowed, not two.
        let later = start + Duration::from_millis(100);
        admission.take_call("op", later).expect("refilled one");
        assert!(admission.take_call("op", later).is_err());
        // A long pause refills to the burst, no further.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            admission
                .take_call("op", much_later)
                .expect("refilled burst");
        }
        assert!(admission.take_call("op", much_later).is_err());
    }

    #[test]
    fn no_rate_limit_at_zero() {
        let admission = limits(0, 0.0, 1);
        let now = Instant::now();
        for _ in 0..10_000 {
            admission.take_call("op", now).expect("unlimited");
        }
    }

    #[test]
    fn quiet_callers_are_forgotten() {
        let admission = limits(0, 1000.0, 1);
        let start = Instant::now();
        for caller in 0..=SWEEP_ABOVE {
            admission
                .take_call(&caller.to_string(), start)
                .expect("first call");
        }
        let later = start + Duration::from_secs(1);
        admission.take_call("new", later).expect("first call");
        let kept = admission.calls.lock().expect("lock").len();
        assert_eq!(kept, 1, "only the caller that just called is remembered");
    }

    #[test]
    fn an_address_refused_too_often_is_turned_away_until_it_slows_down() {
        let admission = limits(0, 0.0, 1);
        let start = Instant::now();
        for _ in 0..REFUSAL_BURST {
            admission
                .check_refusals("10.0.0.9", start)
                .expect("still heard");
            admission.count_refusal("10.0.0.9", start);
        }
        let turned = admission
            .check_refusals("10.0.0.9", start)
            .expect_err("turned away");
        assert_eq!(turned.code(), tonic::Code::ResourceExhausted);
        admission
            .check_refusals("10.0.0.10", start)
            .expect("another address");
        let later = start + Duration::from_secs_f64(1.0 / REFUSAL_RATE);
        admission
            .check_refusals("10.0.0.9", later)
            .expect("refilled by one");
    }

    #[test]
    fn a_tiny_rate_does_not_overflow_the_wait() {
        let admission = limits(0, 1e-30, 1);
        let now = Instant::now();
        admission.take_call("op", now).expect("the burst");
        let refused = admission.take_call("op", now).expect_err("spent");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    }

    #[test]
    fn callers_are_identities_else_addresses() {
        let peer: SocketAddr = "10.1.2.3:4567".parse().expect("address");
        assert_eq!(caller_key(Some("spiffe://x/y"), Some(peer)), "spiffe://x/y");
        assert_eq!(caller_key(None, Some(peer)), "10.1.2.3");
        assert_eq!(caller_key(None, None), "unknown");
    }
}
