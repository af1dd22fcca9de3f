package dev.cutover.gate;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * The record a sink writer is given, read from Flink's own writer context. {@code
 * SinkWriter.Context.timestamp()} boxes every timestamp into a new {@code Long}, an allocation per
 * record that costs more than the gate's decision; the context Flink's sink operator passes holds
 * the record itself, and its timestamp can be read as a {@code long}. Any other context (another
 * Flink version, a test's) yields null: the caller then asks {@code timestamp()}.
 */
final class SinkRecords {
    private SinkRecords() {}

    private static final String FLINK_CONTEXT =
            "org.apache.flink.streaming.runtime.operators.sink.SinkWriterOperator$Context";
    /** Flink's writer context class (null: not found, never matched). */
    private static final Class<?> CONTEXT;
    /** Its record field, as {@code (Object) -> StreamRecord}. */
    private static final MethodHandle RECORD;

    static {
        Class<?> context = null;
        MethodHandle record = null;
        try {
            Class<?> c = Class.forName(FLINK_CONTEXT, false, SinkWriter.class.getClassLoader());
            record = MethodHandles.privateLookupIn(c, MethodHandles.lookup())
                    .findGetter(c, "element", StreamRecord.class)
                    .asType(MethodType.methodType(StreamRecord.class, Object.class));
            context = c;
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            context = null;
            record = null;
        }
        CONTEXT = context;
        RECORD = record;
    }

    /** The record behind {@code context}, or null if it is not Flink's sink operator's context. */
    static StreamRecord<?> of(SinkWriter.Context context) {
        if (context.getClass() != CONTEXT) {
            return null;
        }
        try {
            return (StreamRecord<?>) RECORD.invokeExact((Object) context);
        } catch (Throwable e) {
            return null;
        }
    }
}
