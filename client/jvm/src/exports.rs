//! The JNI entry points of `dev.cutover.gate.NativeGate`.
//!
//! A gate handle is a pointer to a boxed [`Handle`] passed to Java as a
//! `long`; Java's `Gate` owns it, uses it from one thread at a time (a
//! Flink subtask's), and closes it once. The per-record calls take and
//! return primitives only, never touch the JNI environment, and return
//! [`FAILED`] instead of unwinding into the JVM.
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Duration;

use cutover_client::{ClientTls, Colour, Decision, Gate, GateIdentity, Key, Mode, PipelineName};
use jni_sys::{JNIEnv, jboolean, jclass, jint, jlong, jobject, jstring};

use crate::jni::{Throw, new_string, string, throw};
use crate::registry::pool;

/// `decide`: the job emits the record.
const EMIT: jint = 0;
/// `decide`: the other colour emits it; drop it.
const DROP: jint = 1;
/// `decide`: not decidable yet; keep it and ask again.
const HOLD: jint = 2;
/// A call failed inside the library (a bug); Java throws.
const FAILED: jint = 3;
/// `decideRecord`: EVENT_TIME mode and the record has no timestamp.
const NO_TIMESTAMP: jint = 4;

/// One gate and the endpoint whose client it uses.
pub(crate) struct Handle {
    pub(crate) gate: Gate,
    endpoint: String,
}

fn code(decision: Decision) -> jint {
    match decision {
        Decision::Emit => EMIT,
        Decision::Drop => DROP,
        Decision::Hold => HOLD,
    }
}

/// The handle behind `gate`.
///
/// # Safety
/// `gate` is 0 or a live handle from `open`, used by one thread at a time.
unsafe fn handle<'a>(gate: jlong) -> Option<&'a mut Handle> {
    // SAFETY: per this function's contract.
    unsafe { (gate as *mut Handle).as_mut() }
}

/// Runs `f` on the handle; `failed` if there is none or `f` panicked.
fn on_handle<T: Copy>(gate: jlong, failed: T, f: impl FnOnce(&mut Handle) -> T) -> T {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Java's Gate passes its own live handle (or 0 once closed).
        match unsafe { handle(gate) } {
            Some(h) => f(h),
            None => failed,
        }
    }))
    .unwrap_or(failed)
}

fn identity(
    env: *mut JNIEnv,
    strings: [jstring; 4],
    subtask_index: jint,
    parallelism: jint,
    attempt: jint,
) -> Result<(String, GateIdentity), String> {
    let [endpoint, pipeline, colour, job_id] = strings.map(|s| {
        // SAFETY: `env` is this thread's; the strings are the call's arguments.
        unsafe { string(env, s) }
    });
    let endpoint = endpoint.ok_or("endpoint is null")?;
    let pipeline =
        PipelineName::new(pipeline.ok_or("pipeline is null")?).map_err(|e| e.to_string())?;
    let colour = colour
        .ok_or("colour is null")?
        .parse::<Colour>()
        .map_err(|e| e.to_string())?;
    let count = |name: &str, v: jint| {
        u32::try_from(v).map_err(|_| format!("{name} must not be negative, got {v}"))
    };
    Ok((
        endpoint,
        GateIdentity {
            pipeline,
            colour,
            job_id: job_id.ok_or("jobId is null")?,
            gate_uid: String::new(),
            subtask_index: count("subtaskIndex", subtask_index)?,
            parallelism: count("parallelism", parallelism)?,
            attempt: count("attempt", attempt)?,
        },
    ))
}

/// `long open(String endpoint, String pipeline, String colour, String jobId,
/// String gateUid, int subtaskIndex, int parallelism, int attempt, String
/// tlsCa, String tlsCert, String tlsKey, String tokenFile)`: a gate on the
/// classloader's session to `endpoint` (the TLS files and token, where not
/// null, replace the environment's for that session when this gate opens
/// it); throws IllegalArgumentException with the reason for a bad identity
/// or address.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_open(
    env: *mut JNIEnv,
    _class: jclass,
    endpoint: jstring,
    pipeline: jstring,
    colour: jstring,
    job_id: jstring,
    gate_uid: jstring,
    subtask_index: jint,
    parallelism: jint,
    attempt: jint,
    tls_ca: jstring,
    tls_cert: jstring,
    tls_key: jstring,
    token_file: jstring,
) -> jlong {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let (endpoint, mut identity) = identity(
            env,
            [endpoint, pipeline, colour, job_id],
            subtask_index,
            parallelism,
            attempt,
        )?;
        // SAFETY: as above.
        identity.gate_uid = unsafe { string(env, gate_uid) }.ok_or("gateUid is null")?;
        // SAFETY: as above.
        let [tls_ca, tls_cert, tls_key, token_file] =
            [tls_ca, tls_cert, tls_key, token_file].map(|s| unsafe { string(env, s) });
        let mut tls = ClientTls::from_env();
        tls.ca = tls_ca.map(PathBuf::from).or(tls.ca);
        if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
            tls.identity = Some((PathBuf::from(cert), PathBuf::from(key)));
        }
        tls.token_file = token_file.map(PathBuf::from).or(tls.token_file);
        let pool = pool()?;
        pool.acquire(&endpoint, |config| config.tls(tls))
            .map_err(|e| e.to_string())?;
        let gate = match pool.with_client(&endpoint, |client| client.gate(identity)) {
            Ok(gate) => gate,
            Err(e) => {
                pool.release(&endpoint);
                return Err(e.to_string());
            }
        };
        Ok::<_, String>(Box::into_raw(Box::new(Handle { gate, endpoint })) as jlong)
    }));
    match opened {
        Ok(Ok(handle)) => handle,
        Ok(Err(reason)) => {
            // SAFETY: `env` is this thread's.
            unsafe { throw(env, Throw::Argument, &format!("cutover gate: {reason}")) };
            0
        }
        Err(_) => {
            // SAFETY: as above.
            unsafe {
                throw(
                    env,
                    Throw::State,
                    "cutover gate: open failed inside the library",
                )
            };
            0
        }
    }
}

/// `int decide(long gate, long key)`: 0 emit, 1 drop, 2 hold, 3 failed.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_decide(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    key: jlong,
) -> jint {
    on_handle(gate, FAILED, |h| code(h.gate.decide(Key(key))))
}

/// `int decideRecord(long gate, long timestamp, boolean hasTimestamp, long
/// watermark)`: `decide` on the key the plan's mode picks (the timestamp,
/// or the watermark); [`NO_TIMESTAMP`] for a record without one in
/// EVENT_TIME mode. One call per record for the Flink operator.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_decideRecord(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    timestamp: jlong,
    has_timestamp: jboolean,
    watermark: jlong,
) -> jint {
    on_handle(gate, FAILED, |h| {
        let timestamp = has_timestamp.then_some(Key(timestamp));
        h.gate
            .decide_record(timestamp, Key(watermark))
            .map_or(NO_TIMESTAMP, code)
    })
}

/// `int baseline(long gate, long key)`: a native call doing nothing (for the
/// benchmark: what the JNI transition alone costs beside `decide`).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_baseline(
    _env: *mut JNIEnv,
    _class: jclass,
    _gate: jlong,
    key: jlong,
) -> jint {
    (key & 1) as jint
}

/// `int peek(long gate, long key)`: like `decide` without counting.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_peek(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    key: jlong,
) -> jint {
    on_handle(gate, FAILED, |h| code(h.gate.peek(Key(key))))
}

/// `void observeWatermark(long gate, long watermark)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_observeWatermark(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    watermark: jlong,
) {
    on_handle(gate, (), |h| h.gate.observe_watermark(Key(watermark)));
}

/// `int waitUntilDecidable(long gate, long key, long timeoutMillis)`:
/// blocks until `key` is decidable (its decision) or the timeout (2).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_waitUntilDecidable(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    key: jlong,
    timeout_millis: jlong,
) -> jint {
    let timeout = Duration::from_millis(u64::try_from(timeout_millis).unwrap_or(0));
    on_handle(gate, FAILED, |h| {
        code(h.gate.wait_until_decidable_blocking(Key(key), timeout))
    })
}

/// `void setHeld(long gate, long count, long lowestHeld)`; `lowestHeld`
/// is `Long.MAX_VALUE` when nothing is held.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_setHeld(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    count: jlong,
    lowest: jlong,
) {
    let lowest = (count > 0 && lowest != i64::MAX).then_some(Key(lowest));
    on_handle(gate, (), |h| {
        h.gate.set_held(u64::try_from(count).unwrap_or(0), lowest)
    });
}

/// `void trackCheckpoints(long gate, long restoredWatermark)`: the gate
/// reports its job's checkpoints from now on; `restoredWatermark` is its
/// watermark in the checkpoint it was restored from (`Long.MIN_VALUE`: a
/// fresh start).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_trackCheckpoints(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    restored: jlong,
) {
    on_handle(gate, (), |h| h.gate.track_checkpoints(Key(restored)));
}

/// `void checkpointCompleted(long gate, long watermark)`: a checkpoint
/// completed; `watermark` was the gate's when it was taken.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_checkpointCompleted(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    watermark: jlong,
) {
    on_handle(gate, (), |h| h.gate.checkpoint_completed(Key(watermark)));
}

/// `void setIdle(long gate, boolean idle)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_setIdle(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    idle: jboolean,
) {
    on_handle(gate, (), |h| h.gate.set_idle(idle));
}

/// `void finish(long gate)`: the subtask's input ended.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_finish(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) {
    on_handle(gate, (), |h| h.gate.finish());
}

/// `int mode(long gate)`: -1 before the first plan, 0 EVENT_TIME,
/// 1 WATERMARK.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_mode(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) -> jint {
    on_handle(gate, -1, |h| match h.gate.plan().map(|plan| plan.mode) {
        None => -1,
        Some(Mode::EventTime) => 0,
        Some(Mode::Watermark) => 1,
    })
}

/// `long emitted(long gate)`: records this gate emitted.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_emitted(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) -> jlong {
    on_handle(gate, 0, |h| {
        i64::try_from(h.gate.emitted()).unwrap_or(i64::MAX)
    })
}

/// `long dropped(long gate)`: records this gate dropped.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_dropped(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) -> jlong {
    on_handle(gate, 0, |h| {
        i64::try_from(h.gate.dropped()).unwrap_or(i64::MAX)
    })
}

/// `ByteBuffer tailBuffer(long gate)`: a direct buffer over the tail the
/// client publishes for the gate's pipeline (`cutover_client::tail`:
/// sixteen native-order `long`s under a sequence counter), valid until the
/// gate is closed; null if it cannot be made.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_tailBuffer(
    env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) -> jobject {
    let address = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Java's Gate passes its own live handle.
        unsafe { handle(gate) }.map(|h| h.gate.published_tail().as_ptr())
    }))
    .ok()
    .flatten();
    let (Some(address), false) = (address, env.is_null()) else {
        return std::ptr::null_mut();
    };
    let bytes = jlong::try_from(cutover_client::tail::words::COUNT * 8).unwrap_or(0);
    // SAFETY: `env` is this thread's; the memory is the cell's, which the
    // gate (and so the handle) keeps alive; Java reads it only while the
    // gate is open.
    unsafe { ((**env).v1_4.NewDirectByteBuffer)(env, address as *mut std::ffi::c_void, bytes) }
}

/// `void addCounts(long gate, long emitted, long dropped, long maxKey)`:
/// records decided in Java from the tail, counted and published.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_addCounts(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
    emitted: jlong,
    dropped: jlong,
    max_key: jlong,
) {
    on_handle(gate, (), |h| {
        let count = |n: jlong| u64::try_from(n).unwrap_or(0);
        h.gate
            .add_counts(count(emitted), count(dropped), Key(max_key));
        h.gate.flush();
    });
}

/// `String connectionReport(long gate)`: whether the gate's session ever
/// connected, since when it is in its state, and why attempts failed.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_connectionReport(
    env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) -> jstring {
    let report = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Java's Gate passes its own live handle (or 0 once closed).
        unsafe { handle(gate) }.map(|h| h.gate.connection_report())
    }))
    .ok()
    .flatten();
    let text = report.map_or_else(|| "closed".to_string(), |r| r.to_string());
    // SAFETY: `env` is this thread's.
    unsafe { new_string(env, &text) }
}

/// `int connected(long gate)`: 1 while the gate's session is open, else 0.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_connected(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) -> jint {
    on_handle(gate, 0, |h| {
        jint::from(h.gate.connection_report().connected)
    })
}

/// `long epoch(long gate)`: the epoch of the plan the gate holds, -1 before
/// the first.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_epoch(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) -> jlong {
    on_handle(gate, -1, |h| {
        h.gate
            .plan()
            .map_or(-1, |plan| i64::try_from(plan.epoch.0).unwrap_or(i64::MAX))
    })
}

/// `String checkEndpoint(String endpoint)`: null for usable coordinator
/// addresses (separated by commas), else why one is not.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_checkEndpoint(
    env: *mut JNIEnv,
    _class: jclass,
    endpoint: jstring,
) -> jstring {
    // SAFETY: `env` is this thread's; `endpoint` is the call's argument.
    let endpoint = unsafe { string(env, endpoint) };
    let problem = catch_unwind(|| match endpoint {
        None => Some("no coordinator address (null)".to_string()),
        Some(list) => cutover_client::connection_report::check_endpoints(&list).err(),
    })
    .unwrap_or_else(|_| Some("the check failed inside the library".into()));
    match problem {
        // SAFETY: as above.
        Some(reason) => unsafe { new_string(env, &reason) },
        None => std::ptr::null_mut(),
    }
}

/// `void close(long gate)`: flushes and unregisters the gate; the last
/// gate of an endpoint closes its session. The handle is invalid after.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cutover_gate_NativeGate_close(
    _env: *mut JNIEnv,
    _class: jclass,
    gate: jlong,
) {
    let _ = catch_unwind(|| {
        if gate == 0 {
            return;
        }
        // SAFETY: Java's Gate closes its live handle exactly once.
        let handle = unsafe { Box::from_raw(gate as *mut Handle) };
        let Handle { mut gate, endpoint } = *handle;
        gate.flush();
        drop(gate);
        if let Ok(pool) = pool() {
            pool.release(&endpoint);
        }
    });
}
