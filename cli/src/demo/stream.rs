//! The demo's input: a bounded, out-of-order event stream that both jobs
//! replay identically.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One input record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Unique id (its position in the stream).
    pub id: u32,
    /// Event timestamp in milliseconds.
    pub ts: i64,
}

/// Shape of the stream.
#[derive(Clone, Copy, Debug)]
pub struct StreamSpec {
    /// Number of records.
    pub records: u32,
    /// Event time of the first record.
    pub start_ms: i64,
    /// Event time between consecutive records, before jitter.
    pub step_ms: i64,
    /// Each timestamp is moved by up to this much either way.
    pub jitter_ms: i64,
    /// Seed of the jitter.
    pub seed: u64,
}

impl StreamSpec {
    /// The largest lateness a record can have behind the highest timestamp
    /// seen before it: the bound of the watermark strategy.
    pub fn out_of_orderness_ms(&self) -> i64 {
        2 * self.jitter_ms
    }

    /// Generates the records, in stream order.
    pub fn generate(&self) -> Vec<Record> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        (0..self.records)
            .map(|id| Record {
                id,
                ts: self.start_ms
                    + i64::from(id) * self.step_ms
                    + rng.random_range(-self.jitter_ms..=self.jitter_ms),
            })
            .collect()
    }
}

/// The subtask (of `parallelism`) a job routes `id` to; `salt` differs per
/// job so the two jobs partition keys differently.
pub fn partition(id: u32, salt: u64, parallelism: u32) -> u32 {
    // SplitMix64 finaliser: a cheap, well-mixed hash.
    let mut z = u64::from(id) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % u64::from(parallelism)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_out_of_order_within_its_bound_and_reproducible() {
        let spec = StreamSpec {
            records: 5000,
            start_ms: 0,
            step_ms: 10,
            jitter_ms: 100,
            seed: 7,
        };
        let records = spec.generate();
        assert_eq!(records, spec.generate());
        let mut max = i64::MIN;
        let mut late = 0;
        for r in &records {
            if r.ts < max {
                late += 1;
                assert!(max - r.ts <= spec.out_of_orderness_ms());
            }
            max = max.max(r.ts);
        }
        assert!(
            late > 100,
            "the stream must be out of order ({late} late records)"
        );
    }

    #[test]
    fn partitions_differ_between_jobs() {
        let same = (0..1000)
            .filter(|&id| partition(id, 1, 4) == partition(id, 2, 4))
            .count();
        assert!(same < 400, "{same}");
        assert!((0..1000).all(|id| partition(id, 1, 6) < 6));
    }
}
