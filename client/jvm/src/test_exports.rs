//! JNI entry points for the tests of the Java side's tail reader
//! (`tests/flink/jvm/TailAgreement.java`): plans generated from a seed and
//! installed into a gate's pipeline as if the coordinator had sent them.
//! Not used by a gate serving a job.
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cutover_client::{Colour, Key, Mode};
use cutover_core::{Epoch, Incarnation, Plan, RetiredBelow, Timeline};
use jni_sys::{JNIEnv, jclass, jlong};

use crate::exports::Handle;

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A key in -20..=20, or now and then an extreme.
    fn key(&mut self) -> i64 {
        match self.next() % 16 {
            0 => i64::MIN + 1,
            1 => i64::MAX - 1,
            _ => (self.next() % 41) as i64 - 20,
        }
    }
}

/// The plan of `seed`: one to five segments, a horizon, retirement floors
/// at or below it, either mode.
fn plan_of(seed: u64, epoch: u64) -> Plan {
    let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let first = if random.next().is_multiple_of(2) {
        Colour::Blue
    } else {
        Colour::Green
    };
    let mut timeline = Timeline::new(first);
    for _ in 0..random.next() % 5 {
        let last = timeline.last();
        let start = random.key().max(last.start.0.saturating_add(1));
        if let Ok(next) = timeline.with_appended(Key(start), last.owner.other()) {
            timeline = next;
        }
    }
    let horizon = random.key();
    let floor = |random: &mut Random| match random.next() % 3 {
        0 => i64::MIN,
        _ => random.key().min(horizon),
    };
    let retired = RetiredBelow {
        blue: Key(floor(&mut random)),
        green: Key(floor(&mut random)),
    };
    Plan {
        timeline,
        horizon: Key(horizon),
        epoch: Epoch(epoch),
        mode: if random.next().is_multiple_of(2) {
            Mode::EventTime
        } else {
            Mode::Watermark
        },
        retired,
        incarnation: Incarnation(1),
        unknown: Default::default(),
    }
}

/// `long testInstallPlan(long gate, long seed, long epoch)`: installs the
/// plan of `seed` at `epoch` into the gate's pipeline; returns the number
/// of its segments (0 if the gate is closed).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_testInstallPlan(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    seed: jlong,
    epoch: jlong,
) -> jlong {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Java passes its own live handle; only shared access here
        // (installing goes through the slot's own synchronisation).
        let Some(handle) = (unsafe { (gate as *const Handle).as_ref() }) else {
            return 0;
        };
        let plan = plan_of(seed as u64, epoch.max(1) as u64);
        let segments = plan.timeline.segments().len() as jlong;
        handle.gate.install_for_test(Arc::new(plan));
        segments
    }))
    .unwrap_or(0)
}
