package dev.cutover.gate;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.base.BooleanSerializer;
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.api.java.typeutils.runtime.TupleSerializer;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cutover gate as a Flink operator, placed right before a sink: each record passes if this
 * job's colour owns its key, is dropped if the other colour does, and is held (in order, in
 * checkpointed state, never dropped) until the coordinator's horizon makes it decidable. The key
 * is the record's timestamp (EVENT_TIME mode) or the subtask's current watermark (WATERMARK
 * mode), as the pipeline's plan says.
 *
 * <pre>{@code
 * DataStream<Order> gated = GateOperator.before(orders, GateConfig.fromJobConfiguration());
 * gated.sinkTo(sink);
 * }</pre>
 *
 * An operator rather than a ProcessFunction: releasing held records needs the watermarks and
 * timers of a non-keyed stream, which only an operator sees.
 *
 * <p>With checkpointing on, the operator tells the coordinator how far its job is durably: the
 * lowest key it could decide again after restoring each checkpoint (the watermark it had when
 * the checkpoint was taken, or a lower key among the records it held then), once Flink reports
 * the checkpoint complete (and, after a restore, the value stored in the checkpoint it restored
 * from). The
 * coordinator then never counts this job as drained, nor retires keys it can still replay, on
 * the strength of progress a failover would undo.
 *
 * <p>What the gate is waiting for shows where Flink users look: its figures are Flink metrics in
 * the operator's group {@code cutover} ({@code connected} 1/0, {@code epoch} of the plan held,
 * -1 before the first, {@code held}, {@code emitted}, {@code dropped} records), and a subtask
 * that has held records for 30 s logs (at most every 30 s) how many, since when, and what its
 * session says about the coordinator (never connected, the last error, ...). The overflow and
 * end-of-input errors say the same.
 */
public final class GateOperator<T> extends AbstractStreamOperator<T>
        implements OneInputStreamOperator<T, T>, BoundedOneInput {
    private static final long serialVersionUID = 1L;
    /** How often held records are retried without new input. */
    private static final long RETRY_MILLIS = 50;
    private static final Logger GATE_LOG = LoggerFactory.getLogger(GateOperator.class);

    private final GateConfig config;
    private transient Gate gate;
    private transient ArrayDeque<StreamRecord<T>> held;
    private transient ArrayDeque<Long> heldKeys;
    /** One entry per held record, in order: value, key, timestamp, whether it has one. */
    private transient ListState<Tuple4<T, Long, Long, Boolean>> heldState;
    /** Union list state: every subtask's watermark at the checkpoint (the minimum is restored). */
    private transient ListState<Long> watermarkState;
    /** Watermark at each checkpoint taken and not yet reported complete. */
    private transient TreeMap<Long, Long> pendingCheckpoints;
    private transient long restoredWatermark;
    private transient boolean trackingCheckpoints;
    private transient int maxHeld;
    /** How long the end of input waits for the last held records. */
    private transient Duration endWait;
    /** Held records this long (and then at most this often) are logged. */
    private transient long holdWarningNanos;
    private transient boolean retryScheduled;
    private transient long watermark;
    /** When the oldest record held now was held ({@code System.nanoTime}). */
    private transient long heldSince;
    private transient long lastHoldWarning;
    /** The metrics' values, refreshed on the task's thread (reporters read them from theirs). */
    private transient volatile long connectedGauge;
    private transient volatile long epochGauge;
    private transient volatile long heldGauge;
    private transient volatile long emittedGauge;
    private transient volatile long droppedGauge;

    /** A gate operator reporting as {@code config} says. */
    public GateOperator(GateConfig config) {
        this.config = config;
    }

    /**
     * {@code input} through a gate operator of the same type, at the job's default parallelism
     * (the result can set another, a slot sharing group, ...).
     */
    public static <T> SingleOutputStreamOperator<T> before(DataStream<T> input, GateConfig config) {
        return input.transform("cutover-gate", input.getType(), new GateOperator<>(config))
                .uid(config.gateUid)
                .name("cutover gate");
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        // Transient fields are not initialised by deserialising the operator.
        watermark = Long.MIN_VALUE;
        heldState = context.getOperatorStateStore()
                .getListState(new ListStateDescriptor<>("cutover-held-records", heldSerializer()));
        held = new ArrayDeque<>();
        heldKeys = new ArrayDeque<>();
        pendingCheckpoints = new TreeMap<>();
        watermarkState = context.getOperatorStateStore()
                .getUnionListState(new ListStateDescriptor<>("cutover-checkpointed-watermark", LongSerializer.INSTANCE));
        restoredWatermark = Long.MIN_VALUE;
        if (context.isRestored()) {
            // Every subtask's watermark at that checkpoint: a record replayed to any subtask (at any
            // parallelism) comes after the lowest of them.
            long lowest = Long.MAX_VALUE;
            boolean any = false;
            for (Long w : watermarkState.get()) {
                lowest = Math.min(lowest, w);
                any = true;
            }
            restoredWatermark = any ? lowest : Long.MIN_VALUE;
            // One list entry per record, so that a rescaled job's subtasks split records whole.
            for (Tuple4<T, Long, Long, Boolean> entry : heldState.get()) {
                held.add(entry.f3 ? new StreamRecord<>(entry.f0, entry.f2) : new StreamRecord<>(entry.f0));
                heldKeys.add(entry.f1);
            }
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private TypeSerializer<Tuple4<T, Long, Long, Boolean>> heldSerializer() {
        TypeSerializer<T> value = getOperatorConfig().getTypeSerializerIn(0, getUserCodeClassloader());
        return new TupleSerializer<>((Class) Tuple4.class, new TypeSerializer[] {
            value, LongSerializer.INSTANCE, LongSerializer.INSTANCE, BooleanSerializer.INSTANCE
        });
    }

    @Override
    public void open() throws Exception {
        super.open();
        var task = getRuntimeContext().getTaskInfo();
        GateConfig resolved = config.resolve(
                getExecutionConfig().getGlobalJobParameters().toMap(),
                getContainingTask().getJobConfiguration().toMap(),
                getContainingTask().getEnvironment().getTaskManagerInfo().getConfiguration().toMap());
        gate = Gate.open(
                resolved.coordinator,
                resolved.pipeline,
                resolved.colour,
                getRuntimeContext().getJobInfo().getJobId().toString(),
                resolved.gateUid,
                task.getIndexOfThisSubtask(),
                task.getNumberOfParallelSubtasks(),
                task.getAttemptNumber(),
                resolved.tlsCa,
                resolved.tlsCert,
                resolved.tlsKey,
                resolved.tokenFile);
        maxHeld = resolved.maxHeld;
        endWait = resolved.endOfInputTimeout;
        holdWarningNanos = resolved.holdWarning.toNanos();
        registerMetrics(getMetricGroup().addGroup("cutover"));
        heldSince = System.nanoTime();
        lastHoldWarning = heldSince - holdWarningNanos;
        trackingCheckpoints = false;
        if (checkpointingConfigured(getContainingTask().getJobConfiguration().toMap())) {
            trackCheckpoints();
        }
        if (!held.isEmpty()) {
            reportHeld();
            scheduleRetry();
        }
    }

    private void registerMetrics(MetricGroup group) {
        group.gauge("connected", () -> connectedGauge);
        group.gauge("epoch", () -> epochGauge);
        group.gauge("held", () -> heldGauge);
        group.gauge("emitted", () -> emittedGauge);
        group.gauge("dropped", () -> droppedGauge);
        refreshMetrics();
    }

    private void refreshMetrics() {
        connectedGauge = gate.connected() ? 1 : 0;
        epochGauge = gate.epoch();
        heldGauge = held.size();
        emittedGauge = gate.emitted();
        droppedGauge = gate.dropped();
    }

    /** The gate's identity, held records and its session's connection, for messages. */
    private String situation() {
        double heldForSeconds = (System.nanoTime() - heldSince) / 1e9;
        return "cutover gate " + config.gateUid + ": " + held.size() + " records held"
                + (held.isEmpty() ? "" : String.format(
                        " (the oldest for %.1f s, lowest key %d)", heldForSeconds, lowestHeld()))
                + ", plan epoch " + gate.epoch() + "; " + gate.connectionReport();
    }

    /** Logs records held for long, with the reason as far as the gate knows it. */
    private void warnOfLongHolds() {
        long now = System.nanoTime();
        if (held.isEmpty() || now - heldSince < holdWarningNanos || now - lastHoldWarning < holdWarningNanos) {
            return;
        }
        lastHoldWarning = now;
        GATE_LOG.warn("{} (records wait until the coordinator's horizon passes their keys)", situation());
    }

    /** Whether the job's configuration turns periodic checkpoints on. */
    static boolean checkpointingConfigured(java.util.Map<String, String> jobConfiguration) {
        String interval = jobConfiguration.get("execution.checkpointing.interval");
        return interval != null && !interval.isBlank() && !interval.trim().matches("0+\\s*[a-z]*");
    }

    /**
     * From now on the coordinator counts this gate as durably past a key only through completed
     * checkpoints (a failover restarts it there), starting from the checkpoint it restored from.
     * Called at open when the configuration turns checkpoints on, else at the first checkpoint.
     */
    private void trackCheckpoints() {
        if (!trackingCheckpoints) {
            gate.trackCheckpoints(restoredWatermark);
            trackingCheckpoints = true;
        }
    }

    private long keyOf(StreamRecord<T> record) {
        if (gate.mode() == Gate.Mode.WATERMARK) {
            return watermark;
        }
        if (!record.hasTimestamp()) {
            throw new IllegalStateException(
                    "cutover gate: a record has no timestamp; assign timestamps before the gate or use WATERMARK mode");
        }
        return record.getTimestamp();
    }

    @Override
    public void processElement(StreamRecord<T> record) throws Exception {
        if (held.isEmpty()) {
            // One native call: the library picks the key by the plan's mode.
            int code = gate.decideRecord(record.getTimestamp(), record.hasTimestamp(), watermark);
            if (code == 0) {
                output.collect(record);
                return;
            }
            if (code == 1) {
                return;
            }
        }
        hold(record, keyOf(record));
    }

    private void hold(StreamRecord<T> record, long key) {
        if (held.size() >= maxHeld) {
            throw new IllegalStateException("cutover gate: more than " + maxHeld
                    + " records held in one subtask: the coordinator is unreachable or the horizon does not move"
                    + " (raise " + GateConfig.MAX_HELD_KEY + " if this load is expected); " + situation());
        }
        if (held.isEmpty()) {
            heldSince = System.nanoTime();
        }
        held.add(record.copy(record.getValue()));
        heldKeys.add(key);
        reportHeld();
        scheduleRetry();
    }

    private void reportHeld() {
        gate.setHeld(held.size(), lowestHeld());
        heldGauge = held.size();
    }

    private long lowestHeld() {
        long lowest = Long.MAX_VALUE;
        for (long k : heldKeys) {
            lowest = Math.min(lowest, k);
        }
        return lowest;
    }

    /** Emits or drops held records in order, up to the first still undecidable one. */
    private void release() {
        if (held.isEmpty()) {
            return;
        }
        int before = held.size();
        while (!held.isEmpty()) {
            int code = gate.decideCode(heldKeys.peekFirst());
            if (code == 2) {
                break;
            }
            StreamRecord<T> record = held.pollFirst();
            heldKeys.pollFirst();
            if (code == 0) {
                output.collect(record);
            }
        }
        if (held.size() != before) {
            reportHeld();
            // The oldest held record now came later than the one released.
            heldSince = System.nanoTime();
        }
        if (!held.isEmpty()) {
            warnOfLongHolds();
            scheduleRetry();
        }
    }

    private void scheduleRetry() {
        if (retryScheduled) {
            return;
        }
        retryScheduled = true;
        var time = getProcessingTimeService();
        time.registerTimer(time.getCurrentProcessingTime() + RETRY_MILLIS, t -> {
            retryScheduled = false;
            release();
        });
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        watermark = mark.getTimestamp();
        gate.observeWatermark(watermark);
        release();
        refreshMetrics();
        super.processWatermark(mark);
    }

    @Override
    public void endInput() throws Exception {
        // The last held records: wait (bounded) until the horizon reaches them.
        while (!held.isEmpty()) {
            long key = heldKeys.peekFirst();
            if (gate.waitUntilDecidable(key, endWait) == Decision.HOLD) {
                throw new IllegalStateException("cutover gate: records still undecidable "
                        + endWait.toMillis() / 1000.0 + " s after the end of input; " + situation());
            }
            release();
        }
        gate.finish();
        refreshMetrics();
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        List<Tuple4<T, Long, Long, Boolean>> entries = new ArrayList<>(held.size());
        var keys = heldKeys.iterator();
        for (StreamRecord<T> record : held) {
            entries.add(Tuple4.of(record.getValue(), keys.next(), record.getTimestamp(), record.hasTimestamp()));
        }
        heldState.update(entries);
        // The lowest key this subtask could decide again after restoring this checkpoint: its
        // watermark then, or a lower key among the records it holds (they are decided after the
        // restore, however far the watermark was).
        long floor = watermark;
        for (long k : heldKeys) {
            floor = Math.min(floor, k);
        }
        watermarkState.update(List.of(floor));
        pendingCheckpoints.put(context.getCheckpointId(), floor);
        trackCheckpoints();
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) throws Exception {
        super.notifyCheckpointComplete(checkpointId);
        // Flink restores the latest completed checkpoint; intermediate savepoints are neither
        // reported complete nor used for recovery.
        var completed = pendingCheckpoints.headMap(checkpointId, true);
        Long watermark = pendingCheckpoints.get(checkpointId);
        completed.clear();
        if (watermark != null && gate != null) {
            gate.checkpointCompleted(watermark);
        }
    }

    @Override
    public void close() throws Exception {
        if (gate != null) {
            gate.close();
            gate = null;
        }
        super.close();
    }
}
