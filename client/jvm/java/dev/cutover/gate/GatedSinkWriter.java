package dev.cutover.gate;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.flink.api.common.TaskInfo;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.connector.sink2.CommittingSinkWriter;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.streaming.api.operators.StreamingRuntimeContext;
import org.apache.flink.streaming.runtime.operators.sink.InitContextBase;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * The writer of a {@link GatedSink}: decides each record before the wrapped writer sees it, holds
 * the undecidable ones (copied when Flink reuses objects), releases them on watermarks, on a retry
 * timer and at the end of input, and keeps them in its checkpointed state with the wrapped
 * writer's. At each checkpoint it hands its committer a marker with its floor; the committer
 * hands it back once the checkpoint completed ({@link #markerCommitted}), and the gate then
 * reports that floor as durable, as {@link GateOperator} does on {@code notifyCheckpointComplete}.
 */
// close() passes on what the wrapped object's close() throws.
@SuppressWarnings("try")
final class GatedSinkWriter<T>
        implements StatefulSinkWriter<T, GatedSinkState>, CommittingSinkWriter<T, GateCommittable> {
    /** The open writers of this classloader, by id: where committed markers are delivered. */
    private static final Map<String, GatedSinkWriter<?>> OPEN = new ConcurrentHashMap<>();

    /** The job's id, then a random one: markers of another job never reach this writer. */
    private final String id;
    private final SinkWriter<T> inner;
    private final Gate gate;
    private final GateBuffer<Held<T>> held;
    private final TypeSerializer<T> serializer;
    private final boolean objectReuse;
    private final ProcessingTimeService time;
    private final MailboxExecutor mailbox;
    private final TaskInfo task;
    /** The context released records are written with. */
    private final ReleaseContext releaseContext = new ReleaseContext();
    private final DataOutputSerializer scratch = new DataOutputSerializer(256);
    private long watermark = Long.MIN_VALUE;
    private long restoredFloor = Long.MIN_VALUE;
    private boolean trackingCheckpoints;
    private long markers;
    private long appliedMarker;
    /** The newest committed marker not applied yet (set by the committer, applied on the task's thread). */
    private final AtomicReference<GateCommittable> committed = new AtomicReference<>();

    /** A held record: its value and timestamp. */
    private record Held<T>(T value, long timestamp, boolean hasTimestamp) {}

    GatedSinkWriter(SinkWriter<T> inner, GateConfig config, WriterInitContext context, List<GatedSinkState> restored)
            throws IOException {
        this.inner = inner;
        this.task = context.getTaskInfo();
        Map<String, String> jobConfiguration = Map.of();
        Map<String, String> taskManagerConfiguration = Map.of();
        Map<String, String> jobParameters = Map.of();
        // The job's configuration (where a deployment sets cutover.*) is reachable through the
        // runtime context Flink's own writer context carries.
        if (context instanceof InitContextBase base) {
            RuntimeContext runtime = base.getRuntimeContext();
            jobParameters = runtime.getGlobalJobParameters();
            if (runtime instanceof StreamingRuntimeContext streaming) {
                jobConfiguration = streaming.getJobConfiguration().toMap();
                taskManagerConfiguration = streaming.getTaskManagerRuntimeInfo().getConfiguration().toMap();
            }
        }
        this.id = idOf(context.getJobInfo().getJobId().toString());
        this.serializer = context.createInputSerializer();
        this.objectReuse = context.isObjectReuseEnabled();
        this.time = context.getProcessingTimeService();
        this.mailbox = context.getMailboxExecutor();
        Gate opened = null;
        try {
            GateConfig resolved = config.resolve(jobParameters, jobConfiguration, taskManagerConfiguration);
            opened = resolved.openGate(context.getJobInfo().getJobId().toString(), task);
            this.gate = opened;
            this.held = new GateBuffer<>(gate, resolved);
            restore(restored);
            held.registerMetrics(context.metricGroup().addGroup("cutover"));
            if (GateOperator.checkpointingConfigured(jobConfiguration)) {
                trackCheckpoints();
            }
            if (!held.isEmpty()) {
                held.report();
                scheduleRetry();
            }
        } catch (RuntimeException | IOException e) {
            // Flink never sees this writer: close what it opened, the wrapped writer included.
            if (opened != null) {
                opened.close();
            }
            try {
                inner.close();
            } catch (Exception closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
        OPEN.put(id, this);
    }

    /** A writer id for job {@code jobId}. */
    private static String idOf(String jobId) {
        return jobId + "/" + UUID.randomUUID();
    }

    /** Whether {@code writer} (a marker's) is a writer of job {@code jobId}. */
    static boolean ofJob(String writer, String jobId) {
        return writer.startsWith(jobId + "/");
    }

    /**
     * Held records and the floor from a checkpoint. The floor counts only when this subtask gets
     * back exactly the one it wrote (same index, same parallelism); after a rescale the gate
     * restarts from the lowest key ({@code Long.MIN_VALUE}) until its next checkpoint completes.
     */
    private void restore(List<GatedSinkState> states) throws IOException {
        List<GatedSinkState> floors = new ArrayList<>();
        for (GatedSinkState state : states) {
            if (state.kind == GatedSinkState.Kind.HELD) {
                DataInputDeserializer in = new DataInputDeserializer(state.value);
                T value = serializer.deserialize(in);
                if (in.available() != 0) {
                    throw new IOException("cutover GatedSink: a held record in the checkpoint does not read as this"
                            + " job's input type (" + in.available() + " bytes left over); held records are kept"
                            + " in the input type's own serialized form, without schema evolution");
                }
                held.restore(new Held<>(value, state.timestamp, state.hasTimestamp), state.key);
            } else if (state.kind == GatedSinkState.Kind.FLOOR) {
                floors.add(state);
            }
        }
        if (floors.size() == 1
                && floors.get(0).subtask == task.getIndexOfThisSubtask()
                && floors.get(0).parallelism == task.getNumberOfParallelSubtasks()) {
            restoredFloor = floors.get(0).key;
        }
    }

    private void trackCheckpoints() {
        if (!trackingCheckpoints) {
            gate.trackCheckpoints(restoredFloor);
            trackingCheckpoints = true;
        }
    }

    @Override
    public void write(T element, Context context) throws IOException, InterruptedException {
        boolean hasTimestamp;
        long timestamp;
        StreamRecord<?> record = SinkRecords.of(context);
        if (record != null) {
            // As Flink's context.timestamp() reads it, without the boxing.
            timestamp = record.getTimestamp();
            hasTimestamp = record.hasTimestamp() && timestamp != Long.MIN_VALUE;
        } else {
            Long boxed = context.timestamp();
            hasTimestamp = boxed != null;
            timestamp = hasTimestamp ? boxed : 0;
        }
        if (held.isEmpty()) {
            int code = gate.decideRecord(timestamp, hasTimestamp, watermark);
            if (code == 0) {
                inner.write(element, context);
                return;
            }
            if (code == 1) {
                return;
            }
        }
        long key = gate.recordKey(timestamp, hasTimestamp, watermark);
        // With object reuse, the element is the object the upstream operator fills again next.
        T value = objectReuse ? serializer.copy(element) : element;
        held.hold(new Held<>(value, hasTimestamp ? timestamp : 0, hasTimestamp), key);
        scheduleRetry();
    }

    private void emit(Held<T> record) throws IOException, InterruptedException {
        releaseContext.record = record;
        inner.write(record.value, releaseContext);
    }

    private void release() throws IOException, InterruptedException {
        if (held.release(this::emit)) {
            scheduleRetry();
        }
    }

    private void scheduleRetry() {
        held.scheduleRetry(time, t -> {
            if (!closed()) {
                release();
            }
        });
    }

    private boolean closed() {
        return !OPEN.containsKey(id);
    }

    @Override
    public void writeWatermark(Watermark mark) throws IOException, InterruptedException {
        watermark = mark.getTimestamp();
        gate.observeWatermark(watermark);
        release();
        held.refreshMetrics();
        inner.writeWatermark(mark);
    }

    @Override
    public void flush(boolean endOfInput) throws IOException, InterruptedException {
        if (endOfInput) {
            // The last held records: wait (bounded) until the horizon reaches them.
            held.releaseAll(this::emit);
            gate.finish();
            held.refreshMetrics();
        }
        inner.flush(endOfInput);
    }

    @Override
    @SuppressWarnings("unchecked")
    public Collection<GateCommittable> prepareCommit() throws IOException, InterruptedException {
        List<GateCommittable> committables = new ArrayList<>();
        if (inner instanceof CommittingSinkWriter) {
            for (Object committable : ((CommittingSinkWriter<T, Object>) inner).prepareCommit()) {
                committables.add(GateCommittable.of(committable));
            }
        }
        // Always a marker: it counts only if the gate tracks checkpoints when it comes back (from
        // the first checkpoint on when the configuration does not say).
        committables.add(GateCommittable.marker(id, ++markers, held.checkpointFloor(watermark)));
        return committables;
    }

    @Override
    @SuppressWarnings("unchecked")
    public List<GatedSinkState> snapshotState(long checkpointId) throws IOException {
        List<GatedSinkState> states = new ArrayList<>(held.size() + 2);
        IOException[] failure = new IOException[1];
        held.forEach((record, key) -> {
            try {
                scratch.clear();
                serializer.serialize(record.value, scratch);
                states.add(GatedSinkState.held(scratch.getCopyOfBuffer(), key, record.timestamp, record.hasTimestamp));
            } catch (IOException e) {
                failure[0] = e;
            }
        });
        if (failure[0] != null) {
            throw failure[0];
        }
        states.add(GatedSinkState.floor(
                held.checkpointFloor(watermark), task.getIndexOfThisSubtask(), task.getNumberOfParallelSubtasks()));
        if (inner instanceof StatefulSinkWriter) {
            for (Object state : ((StatefulSinkWriter<T, Object>) inner).snapshotState(checkpointId)) {
                states.add(GatedSinkState.inner(state));
            }
        }
        trackCheckpoints();
        return states;
    }

    /**
     * A checkpoint's marker was committed: its checkpoint completed. Delivered to the writer that
     * took it, on its task's thread; markers of writers that are gone are dropped (false).
     */
    static boolean markerCommitted(GateCommittable marker) {
        GatedSinkWriter<?> writer = OPEN.get(marker.writer);
        if (writer == null) {
            return false;
        }
        // Only the newest marker counts: one completion can commit the markers of earlier
        // checkpoints that never completed, whose floors may be higher than the completed one's.
        writer.committed.accumulateAndGet(marker, (a, b) -> a == null || b.sequence > a.sequence ? b : a);
        writer.mailbox.execute(writer::applyCommitted, "cutover gate: checkpoint completed");
        return true;
    }

    private void applyCommitted() {
        GateCommittable marker = committed.getAndSet(null);
        if (marker != null && marker.sequence > appliedMarker && trackingCheckpoints && !closed()) {
            appliedMarker = marker.sequence;
            gate.checkpointCompleted(marker.floor);
        }
    }

    @Override
    public void close() throws Exception {
        if (OPEN.remove(id) != null) {
            try {
                inner.close();
            } finally {
                gate.close();
            }
        }
    }

    /** What the wrapped writer sees for a released record: its timestamp, the current watermark. */
    private final class ReleaseContext implements Context {
        private Held<T> record;

        @Override
        public long currentWatermark() {
            return watermark;
        }

        @Override
        public Long timestamp() {
            return record.hasTimestamp ? record.timestamp : null;
        }
    }
}
