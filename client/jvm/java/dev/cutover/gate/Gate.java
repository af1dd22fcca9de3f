package dev.cutover.gate;

import java.time.Duration;

/**
 * One gate: the decision point of one parallel subtask, in front of a sink. Every gate of a
 * classloader shares one coordinator session per endpoint, closed with its last gate.
 *
 * <p>A gate belongs to one thread at a time (a Flink subtask's). {@link #decide} costs a few
 * nanoseconds: it reads the installed plan and never blocks.
 */
public final class Gate implements AutoCloseable {
    private long handle;
    /** The published tail of the plan (null: every decision through the native gate). */
    private final TailReader tail;
    /** Records decided from the tail, not yet counted by the native gate. */
    private long pendingEmitted;
    private long pendingDropped;
    private long pendingMaxKey = Long.MIN_VALUE;

    private Gate(long handle, boolean blue) {
        this.handle = handle;
        java.nio.ByteBuffer buffer = NativeGate.tailBuffer(handle);
        this.tail = buffer == null ? null : new TailReader(buffer, blue);
    }

    /**
     * Registers a gate.
     *
     * @param endpoint the coordinator, e.g. {@code http://cutover.cutover-system.svc:7700}
     * @param pipeline the pipeline's name
     * @param colour {@code BLUE} or {@code GREEN}
     * @param jobId the job's id (a restarted job gets a new one)
     * @param gateUid the gate operator's uid (one job may have several gates)
     * @param subtaskIndex this subtask's index
     * @param parallelism the gate operator's parallelism
     * @param attempt the subtask's attempt number (a higher one takes the gate over)
     * @throws IllegalArgumentException with the reason, for a bad identity or address
     */
    public static Gate open(
            String endpoint,
            String pipeline,
            String colour,
            String jobId,
            String gateUid,
            int subtaskIndex,
            int parallelism,
            int attempt) {
        return open(endpoint, pipeline, colour, jobId, gateUid, subtaskIndex, parallelism, attempt, null, null, null, null);
    }

    /**
     * Registers a gate, with the TLS files and token for an {@code https://} coordinator (each
     * null: from {@code CUTOVER_TLS_CA}, {@code CUTOVER_TLS_CERT}, {@code CUTOVER_TLS_KEY}, {@code
     * CUTOVER_TOKEN_FILE}). The first gate of this process to reach {@code endpoint} sets them for
     * every gate on it.
     *
     * @param tlsCa PEM CA file the coordinator's certificate must chain to
     * @param tlsCert PEM client certificate file (mutual TLS; with {@code tlsKey})
     * @param tlsKey PEM client key file
     * @param tokenFile file holding a bearer token (a projected ServiceAccount token)
     * @see #open(String, String, String, String, String, int, int, int)
     */
    public static Gate open(
            String endpoint,
            String pipeline,
            String colour,
            String jobId,
            String gateUid,
            int subtaskIndex,
            int parallelism,
            int attempt,
            String tlsCa,
            String tlsCert,
            String tlsKey,
            String tokenFile) {
        long handle = NativeGate.open(
                endpoint, pipeline, colour, jobId, gateUid, subtaskIndex, parallelism, attempt, tlsCa, tlsCert, tlsKey,
                tokenFile);
        if (handle == 0) {
            throw new IllegalStateException("cutover gate: open returned no gate");
        }
        return new Gate(handle, "BLUE".equalsIgnoreCase(colour.trim()));
    }

    /** The native handle, for {@link TailTesting}. */
    long handleForTests() {
        return live();
    }

    /** The tail reader (null: none), for {@link TailTesting}. */
    TailReader tailForTests() {
        return tail;
    }

    private long live() {
        if (handle == 0) {
            throw new IllegalStateException("cutover gate: the gate is closed");
        }
        return handle;
    }

    /** Decides a record's key (its timestamp, or the watermark in WATERMARK mode) and counts it. */
    public Decision decide(long key) {
        return Decision.of(decideCode(key));
    }

    /** Counts a decision taken from the tail; true if there was one to count. */
    private boolean countedFromTail(int code, long key) {
        if (code == TailReader.EMIT) {
            pendingEmitted++;
        } else if (code == TailReader.DROP) {
            pendingDropped++;
        } else {
            return false;
        }
        if (key > pendingMaxKey) {
            pendingMaxKey = key;
        }
        return true;
    }

    /** Hands the counts of decisions taken from the tail to the native gate (published with its progress). */
    private void flushCounts() {
        if (pendingEmitted != 0 || pendingDropped != 0) {
            NativeGate.addCounts(live(), pendingEmitted, pendingDropped, pendingMaxKey);
            pendingEmitted = 0;
            pendingDropped = 0;
            pendingMaxKey = Long.MIN_VALUE;
        }
    }

    /**
     * Like {@link #decide} as a code (0 emit, 1 drop, 2 hold), without the enum lookup. A key the
     * published tail covers with EMIT or DROP is decided in Java, without a native call; holds and
     * older keys go through the native gate (which notes the hold and asks for the horizon).
     */
    public int decideCode(long key) {
        if (tail != null && handle != 0) {
            int fast = tail.decide(key);
            if (countedFromTail(fast, key)) {
                return fast;
            }
        }
        int code = NativeGate.decide(live(), key);
        if (code > 2) {
            Decision.of(code);
        }
        return code;
    }

    /**
     * Decides a record on the key the plan's mode picks: its timestamp (EVENT_TIME) or the
     * subtask's watermark (WATERMARK). Returns a code (0 emit, 1 drop, 2 hold).
     *
     * @throws IllegalStateException in EVENT_TIME mode for a record without a timestamp
     */
    public int decideRecord(long timestamp, boolean hasTimestamp, long watermark) {
        if (tail != null && handle != 0) {
            int fast = tail.decideRecord(timestamp, hasTimestamp, watermark);
            if (countedFromTail(fast, tail.recordKey())) {
                return fast;
            }
        }
        int code = NativeGate.decideRecord(live(), timestamp, hasTimestamp, watermark);
        if (code > 2) {
            if (code == 4) {
                throw noTimestamp();
            }
            Decision.of(code);
        }
        return code;
    }

    /**
     * The key a held record waits on, as the plan's mode picks it: the watermark (WATERMARK) or
     * the record's timestamp.
     *
     * @throws IllegalStateException in EVENT_TIME mode for a record without a timestamp
     */
    long recordKey(long timestamp, boolean hasTimestamp, long watermark) {
        if (mode() == Mode.WATERMARK) {
            return watermark;
        }
        if (!hasTimestamp) {
            throw noTimestamp();
        }
        return timestamp;
    }

    private static IllegalStateException noTimestamp() {
        return new IllegalStateException(
                "cutover gate: a record has no timestamp; assign timestamps before the gate or use WATERMARK mode");
    }

    /** A native call that does nothing (what the JNI transition alone costs; for benchmarks). */
    public int nativeBaseline(long key) {
        return NativeGate.baseline(live(), key);
    }

    /** Like {@link #decide}, without counting. */
    public Decision peek(long key) {
        return Decision.of(NativeGate.peek(live(), key));
    }

    /** Reports the subtask's watermark ({@code Long.MAX_VALUE}: input finished). */
    public void observeWatermark(long watermark) {
        flushCounts();
        NativeGate.observeWatermark(live(), watermark);
    }

    /** Blocks until {@code key} is decidable (its decision) or the timeout passes ({@link Decision#HOLD}). */
    public Decision waitUntilDecidable(long key, Duration timeout) {
        return Decision.of(NativeGate.waitUntilDecidable(live(), key, timeout.toMillis()));
    }

    /** Reports how many records the subtask holds and the lowest held key. */
    public void setHeld(long count, long lowestHeldKey) {
        flushCounts();
        NativeGate.setHeld(live(), count, count > 0 ? lowestHeldKey : Long.MAX_VALUE);
    }

    /**
     * Declares that this gate reports its job's completed checkpoints; {@code restoredWatermark}
     * is its watermark in the checkpoint or savepoint the task was restored from ({@code
     * Long.MIN_VALUE} for a fresh start). The coordinator then counts the gate as drained only
     * once a checkpoint past the drain mark completed.
     */
    public void trackCheckpoints(long restoredWatermark) {
        NativeGate.trackCheckpoints(live(), restoredWatermark);
    }

    /** A checkpoint completed; {@code watermark} was this gate's watermark when it was taken. */
    public void checkpointCompleted(long watermark) {
        flushCounts();
        NativeGate.checkpointCompleted(live(), watermark);
    }

    /** Marks the subtask's input idle (or active again). */
    public void setIdle(boolean idle) {
        flushCounts();
        NativeGate.setIdle(live(), idle);
    }

    /** Marks the subtask's input finished. */
    public void finish() {
        flushCounts();
        NativeGate.finish(live());
    }

    /** The plan's decision mode, or {@code null} before the first plan arrived. */
    public Mode mode() {
        if (tail != null && handle != 0) {
            // The published tail carries the mode: no native call (held records ask per record).
            int published = tail.mode();
            if (published == 1) {
                return Mode.EVENT_TIME;
            }
            if (published == 2) {
                return Mode.WATERMARK;
            }
        }
        switch (NativeGate.mode(live())) {
            case 0:
                return Mode.EVENT_TIME;
            case 1:
                return Mode.WATERMARK;
            default:
                return null;
        }
    }

    /** Records this gate emitted. */
    public long emitted() {
        flushCounts();
        return NativeGate.emitted(live());
    }

    /** Records this gate dropped. */
    public long dropped() {
        flushCounts();
        return NativeGate.dropped(live());
    }

    /**
     * What the gate's session can say about its connection: whether it ever connected, since when
     * it is in its present state, how many attempts failed and why (for logs and errors).
     */
    public String connectionReport() {
        return NativeGate.connectionReport(live());
    }

    /** Whether the gate's session to the coordinator is open. */
    public boolean connected() {
        return NativeGate.connected(live()) == 1;
    }

    /** The epoch of the plan the gate holds, -1 before the first. */
    public long epoch() {
        return NativeGate.epoch(live());
    }

    /**
     * Checks coordinator addresses (separated by commas) as the gate will use them: each {@code
     * http://} or {@code https://}, with a host, no path.
     *
     * @throws IllegalArgumentException naming the address and the fix
     */
    public static void checkEndpoint(String endpoint) {
        String problem = NativeGate.checkEndpoint(endpoint);
        if (problem != null) {
            throw new IllegalArgumentException("cutover gate: " + problem);
        }
    }

    /** Sends the last progress and unregisters the gate. Idempotent. */
    @Override
    public void close() {
        if (handle != 0) {
            flushCounts();
        }
        long h = handle;
        handle = 0;
        if (h != 0) {
            NativeGate.close(h);
        }
    }

    /** The key a gate decides on. */
    public enum Mode {
        /** The record's timestamp: every record emitted exactly once. */
        EVENT_TIME,
        /** The subtask's current watermark: exact only up to the watermark's lag. */
        WATERMARK
    }
}
