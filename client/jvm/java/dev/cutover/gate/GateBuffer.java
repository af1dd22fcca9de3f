package dev.cutover.gate;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.function.ObjLongConsumer;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.metrics.MetricGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a gate keeps between records, whichever Flink shape it takes ({@link GateOperator} or the
 * writer of a {@link GatedSink}): the records it holds until the coordinator's horizon decides
 * them (in arrival order, with their keys), the warnings about long holds, and the figures it
 * reports as Flink metrics. Used on the task's thread only.
 *
 * @param <R> how the gate keeps one held record (with its timestamp, if it has one)
 */
final class GateBuffer<R> {
    private static final Logger LOG = LoggerFactory.getLogger(GateBuffer.class);
    /** How often held records are retried without new input. */
    private static final long RETRY_MILLIS = 50;

    private final Gate gate;
    private final String gateUid;
    private final int maxHeld;
    private final Duration endWait;
    private final long holdWarningNanos;
    private final ArrayDeque<R> records = new ArrayDeque<>();
    private final ArrayDeque<Long> keys = new ArrayDeque<>();
    /** When the oldest record held now was held ({@code System.nanoTime}). */
    private long heldSince;
    private long lastHoldWarning;
    private boolean retryScheduled;
    /** The metrics' values, refreshed on the task's thread (reporters read them from theirs). */
    private volatile long connectedGauge;
    private volatile long epochGauge;
    private volatile long heldGauge;
    private volatile long emittedGauge;
    private volatile long droppedGauge;

    /** Where released records go (the operator's output, the wrapped sink's writer). */
    @FunctionalInterface
    interface Emitter<R> {
        void emit(R record) throws IOException, InterruptedException;
    }

    /** A buffer for {@code gate}, with the limits of its resolved configuration. */
    GateBuffer(Gate gate, GateConfig resolved) {
        this.gate = gate;
        this.gateUid = resolved.gateUid;
        this.maxHeld = resolved.maxHeld;
        this.endWait = resolved.endOfInputTimeout;
        this.holdWarningNanos = resolved.holdWarning.toNanos();
        this.heldSince = System.nanoTime();
        this.lastHoldWarning = heldSince - holdWarningNanos;
    }

    boolean isEmpty() {
        return records.isEmpty();
    }

    int size() {
        return records.size();
    }

    /** A record restored from a checkpoint (no limit: it was held before); call {@link #report} after. */
    void restore(R record, long key) {
        records.add(record);
        keys.add(key);
    }

    /** Holds {@code record} behind the ones held already; fails past the configured limit. */
    void hold(R record, long key) {
        if (records.size() >= maxHeld) {
            throw new IllegalStateException("cutover gate: more than " + maxHeld
                    + " records held in one subtask: the coordinator is unreachable or the horizon does not move"
                    + " (raise " + GateConfig.MAX_HELD_KEY + " if this load is expected); " + situation());
        }
        if (records.isEmpty()) {
            heldSince = System.nanoTime();
        }
        records.add(record);
        keys.add(key);
        report();
    }

    /** Tells the gate (and the metric) how many records are held and the lowest key among them. */
    void report() {
        gate.setHeld(records.size(), lowestKey());
        heldGauge = records.size();
    }

    /**
     * Emits or drops held records in order, up to the first still undecidable one; logs a long
     * hold. Whether records are still held (the caller retries later).
     */
    boolean release(Emitter<R> emit) throws IOException, InterruptedException {
        if (records.isEmpty()) {
            return false;
        }
        int before = records.size();
        while (!records.isEmpty()) {
            int code = gate.decideCode(keys.peekFirst());
            if (code == 2) {
                break;
            }
            R record = records.pollFirst();
            keys.pollFirst();
            if (code == 0) {
                emit.emit(record);
            }
        }
        if (records.size() != before) {
            report();
            // The oldest held record now came later than the one released.
            heldSince = System.nanoTime();
        }
        if (records.isEmpty()) {
            return false;
        }
        warnOfLongHolds();
        return true;
    }

    /** Runs {@code release} on the task's thread in 50 ms, unless a retry is already scheduled. */
    void scheduleRetry(ProcessingTimeService time, ProcessingTimeService.ProcessingTimeCallback release) {
        if (retryScheduled) {
            return;
        }
        retryScheduled = true;
        time.registerTimer(time.getCurrentProcessingTime() + RETRY_MILLIS, t -> {
            retryScheduled = false;
            release.onProcessingTime(t);
        });
    }

    /** At the end of input: waits (bounded) until the horizon decides the last held records. */
    void releaseAll(Emitter<R> emit) throws IOException, InterruptedException {
        while (!records.isEmpty()) {
            if (gate.waitUntilDecidable(keys.peekFirst(), endWait) == Decision.HOLD) {
                throw new IllegalStateException("cutover gate: records still undecidable "
                        + endWait.toMillis() / 1000.0 + " s after the end of input; " + situation());
            }
            release(emit);
        }
    }

    /** Each held record with its key, oldest first. */
    void forEach(ObjLongConsumer<R> action) {
        var k = keys.iterator();
        for (R record : records) {
            action.accept(record, k.next());
        }
    }

    /** The lowest key among the held records ({@code Long.MAX_VALUE} if none). */
    long lowestKey() {
        long lowest = Long.MAX_VALUE;
        for (long k : keys) {
            lowest = Math.min(lowest, k);
        }
        return lowest;
    }

    /**
     * The lowest key this gate could decide again after restoring a checkpoint taken now: its
     * watermark, or a lower key among the records it holds (they are decided after the restore,
     * however far the watermark was).
     */
    long checkpointFloor(long watermark) {
        return Math.min(watermark, lowestKey());
    }

    /** The gate's identity, held records and its session's connection, for messages. */
    String situation() {
        double heldForSeconds = (System.nanoTime() - heldSince) / 1e9;
        return "cutover gate " + gateUid + ": " + records.size() + " records held"
                + (records.isEmpty() ? "" : String.format(
                        " (the oldest for %.1f s, lowest key %d)", heldForSeconds, lowestKey()))
                + ", plan epoch " + gate.epoch() + "; " + gate.connectionReport();
    }

    /** Logs records held for long, with the reason as far as the gate knows it. */
    private void warnOfLongHolds() {
        long now = System.nanoTime();
        if (records.isEmpty() || now - heldSince < holdWarningNanos || now - lastHoldWarning < holdWarningNanos) {
            return;
        }
        lastHoldWarning = now;
        LOG.warn("{} (records wait until the coordinator's horizon passes their keys)", situation());
    }

    /**
     * The gate's figures in {@code group}: {@code connected} 1/0, {@code epoch} of the plan held
     * (-1 before the first), {@code held}, {@code emitted}, {@code dropped} records.
     */
    void registerMetrics(MetricGroup group) {
        group.gauge("connected", () -> connectedGauge);
        group.gauge("epoch", () -> epochGauge);
        group.gauge("held", () -> heldGauge);
        group.gauge("emitted", () -> emittedGauge);
        group.gauge("dropped", () -> droppedGauge);
        refreshMetrics();
    }

    /** Reads the gate's figures for the metrics (on the task's thread). */
    void refreshMetrics() {
        connectedGauge = gate.connected() ? 1 : 0;
        epochGauge = gate.epoch();
        heldGauge = records.size();
        emittedGauge = gate.emitted();
        droppedGauge = gate.dropped();
    }
}
