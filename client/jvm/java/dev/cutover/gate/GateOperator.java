package dev.cutover.gate;

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
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

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

    private final GateConfig config;
    private transient Gate gate;
    private transient GateBuffer<StreamRecord<T>> held;
    /** Held records restored from a checkpoint, until the gate opens. */
    private transient List<Tuple4<T, Long, Long, Boolean>> restoredHeld;
    /** One entry per held record, in order: value, key, timestamp, whether it has one. */
    private transient ListState<Tuple4<T, Long, Long, Boolean>> heldState;
    /** Union list state: every subtask's watermark at the checkpoint (the minimum is restored). */
    private transient ListState<Long> watermarkState;
    /** Watermark at each checkpoint taken and not yet reported complete. */
    private transient TreeMap<Long, Long> pendingCheckpoints;
    private transient long restoredWatermark;
    private transient boolean trackingCheckpoints;
    private transient long watermark;
    /** Copies held values when Flink reuses objects (else null: records are not reused). */
    private transient TypeSerializer<T> copier;

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
        restoredHeld = new ArrayList<>();
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
                restoredHeld.add(entry);
            }
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private TypeSerializer<Tuple4<T, Long, Long, Boolean>> heldSerializer() {
        TypeSerializer<T> value = inputSerializer();
        return new TupleSerializer<>((Class) Tuple4.class, new TypeSerializer[] {
            value, LongSerializer.INSTANCE, LongSerializer.INSTANCE, BooleanSerializer.INSTANCE
        });
    }

    private TypeSerializer<T> inputSerializer() {
        return getOperatorConfig().getTypeSerializerIn(0, getUserCodeClassloader());
    }

    @Override
    public void open() throws Exception {
        super.open();
        GateConfig resolved = config.resolve(
                getExecutionConfig().getGlobalJobParameters().toMap(),
                getContainingTask().getJobConfiguration().toMap(),
                getContainingTask().getEnvironment().getTaskManagerInfo().getConfiguration().toMap());
        gate = resolved.openGate(
                getRuntimeContext().getJobInfo().getJobId().toString(), getRuntimeContext().getTaskInfo());
        held = new GateBuffer<>(gate, resolved);
        // With object reuse, the value a held record carries is the object the upstream operator
        // fills again with its next record: the gate keeps a copy.
        copier = getExecutionConfig().isObjectReuseEnabled() ? inputSerializer().duplicate() : null;
        for (Tuple4<T, Long, Long, Boolean> entry : restoredHeld) {
            held.restore(entry.f3 ? new StreamRecord<>(entry.f0, entry.f2) : new StreamRecord<>(entry.f0), entry.f1);
        }
        restoredHeld = null;
        held.registerMetrics(getMetricGroup().addGroup("cutover"));
        trackingCheckpoints = false;
        if (checkpointingConfigured(getContainingTask().getJobConfiguration().toMap())) {
            trackCheckpoints();
        }
        if (!held.isEmpty()) {
            held.report();
            scheduleRetry();
        }
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

    @Override
    public void processElement(StreamRecord<T> record) throws Exception {
        if (held.isEmpty()) {
            // The tail decides in Java; the library picks the key by the plan's mode.
            int code = gate.decideRecord(record.getTimestamp(), record.hasTimestamp(), watermark);
            if (code == 0) {
                output.collect(record);
                return;
            }
            if (code == 1) {
                return;
            }
        }
        long key = gate.recordKey(record.getTimestamp(), record.hasTimestamp(), watermark);
        T value = copier == null ? record.getValue() : copier.copy(record.getValue());
        held.hold(record.copy(value), key);
        scheduleRetry();
    }

    private void release() throws Exception {
        if (held.release(output::collect)) {
            scheduleRetry();
        }
    }

    private void scheduleRetry() {
        held.scheduleRetry(getProcessingTimeService(), t -> release());
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        watermark = mark.getTimestamp();
        gate.observeWatermark(watermark);
        release();
        held.refreshMetrics();
        super.processWatermark(mark);
    }

    @Override
    public void endInput() throws Exception {
        // The last held records: wait (bounded) until the horizon reaches them.
        held.releaseAll(output::collect);
        gate.finish();
        held.refreshMetrics();
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        List<Tuple4<T, Long, Long, Boolean>> entries = new ArrayList<>(held.size());
        held.forEach((record, key) ->
                entries.add(Tuple4.of(record.getValue(), key, record.getTimestamp(), record.hasTimestamp())));
        heldState.update(entries);
        long floor = held.checkpointFloor(watermark);
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
