package dev.cutover.gate;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.api.connector.sink2.CommitterInitContext;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.apache.flink.api.connector.sink2.SupportsCommitter;
import org.apache.flink.api.connector.sink2.SupportsWriterState;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.streaming.api.connector.sink2.SupportsPostCommitTopology;
import org.apache.flink.streaming.api.connector.sink2.SupportsPreCommitTopology;
import org.apache.flink.streaming.api.connector.sink2.SupportsPreWriteTopology;

/**
 * The cutover gate inside a sink: wraps a Flink Sink V2 so that its writer decides every record
 * before writing it, and the job adds no operator to its chain. Records are decided as
 * {@link GateOperator} decides them: written if this job's colour owns their key, dropped if the
 * other colour does, held (in order, in the writer's checkpointed state, never dropped) until the
 * coordinator's horizon decides them, released on watermarks and on a 50 ms retry.
 *
 * <pre>{@code
 * orders.sinkTo(GatedSink.wrap(kafkaSink, GateConfig.fromJobConfiguration())).uid("orders-sink");
 * }</pre>
 *
 * <p>The wrapped sink keeps its own writer state and committer: its states and committables are
 * carried inside the gate's, through its own serializers. With checkpointing on, the gate learns
 * that a checkpoint completed through the committer (a sink writer is not told): each checkpoint
 * carries a marker with the gate's floor, committed with the checkpoint; the sink's committer must
 * therefore run in the writer's JVM, as it does when chained to it (Flink's default).
 *
 * <p>A sink that adds its own topology (pre-write, pre-commit or post-commit: a compacting
 * FileSink, for one) cannot be wrapped: its extra operators would see the gate's committables.
 * {@link #wrap} refuses it; put {@link GateOperator#before} in front of such a sink instead.
 *
 * @param <T> the records written
 */
public final class GatedSink<T>
        implements Sink<T>, SupportsWriterState<T, GatedSinkState>, SupportsCommitter<GateCommittable> {
    private static final long serialVersionUID = 1L;

    private final Sink<T> inner;
    private final GateConfig config;

    private GatedSink(Sink<T> inner, GateConfig config) {
        this.inner = inner;
        this.config = config;
    }

    /**
     * {@code sink} with the gate in its writer, configured as {@code config} says (unset values
     * from the job's configuration when the writer opens).
     *
     * @throws IllegalArgumentException for a sink with its own topology, with the alternative
     */
    public static <T> GatedSink<T> wrap(Sink<T> sink, GateConfig config) {
        if (sink == null || config == null) {
            throw new IllegalArgumentException("cutover GatedSink: wrap needs a sink and a GateConfig");
        }
        String topology = sink instanceof SupportsPreWriteTopology ? "pre-write"
                : sink instanceof SupportsPreCommitTopology ? "pre-commit"
                : sink instanceof SupportsPostCommitTopology ? "post-commit" : null;
        if (topology != null) {
            throw new IllegalArgumentException("cutover GatedSink: " + sink.getClass().getName() + " adds its own "
                    + topology + " topology, which a wrapping sink cannot pass on; put the gate before it instead: "
                    + "GateOperator.before(stream, config).sinkTo(sink)");
        }
        return new GatedSink<>(sink, config);
    }

    @Override
    public SinkWriter<T> createWriter(WriterInitContext context) throws IOException {
        return new GatedSinkWriter<>(innerWriter(context, List.of()), config, context, List.of());
    }

    @Override
    public StatefulSinkWriter<T, GatedSinkState> restoreWriter(
            WriterInitContext context, Collection<GatedSinkState> states) throws IOException {
        List<Object> innerStates = new ArrayList<>();
        List<GatedSinkState> own = new ArrayList<>();
        for (GatedSinkState state : states) {
            if (state.kind == GatedSinkState.Kind.INNER) {
                innerStates.add(state.inner);
            } else {
                own.add(state);
            }
        }
        return new GatedSinkWriter<>(innerWriter(context, innerStates), config, context, own);
    }

    @SuppressWarnings("unchecked")
    private SinkWriter<T> innerWriter(WriterInitContext context, Collection<Object> states) throws IOException {
        if (inner instanceof SupportsWriterState && context.getRestoredCheckpointId().isPresent()) {
            return ((SupportsWriterState<T, Object>) inner).restoreWriter(context, states);
        }
        return inner.createWriter(context);
    }

    @Override
    @SuppressWarnings("unchecked")
    public SimpleVersionedSerializer<GatedSinkState> getWriterStateSerializer() {
        return new GatedSinkState.Serializer(inner instanceof SupportsWriterState
                ? ((SupportsWriterState<T, Object>) inner).getWriterStateSerializer()
                : null);
    }

    @Override
    @SuppressWarnings("unchecked")
    public Committer<GateCommittable> createCommitter(CommitterInitContext context) throws IOException {
        return new GatedCommitter(inner instanceof SupportsCommitter
                ? ((SupportsCommitter<Object>) inner).createCommitter(context)
                : null, context.getJobInfo().getJobId().toString());
    }

    @Override
    @SuppressWarnings("unchecked")
    public SimpleVersionedSerializer<GateCommittable> getCommittableSerializer() {
        return new GateCommittable.Serializer(inner instanceof SupportsCommitter
                ? ((SupportsCommitter<Object>) inner).getCommittableSerializer()
                : null);
    }
}
