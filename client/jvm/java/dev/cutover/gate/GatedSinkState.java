package dev.cutover.gate;

import java.io.IOException;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;

/**
 * One entry of a {@link GatedSink} writer's checkpointed state: a record the gate holds (its value
 * in the input type's own bytes, its key and timestamp), the gate's checkpoint floor (the lowest
 * key it could decide again after a restore, with the subtask that wrote it), or one state entry
 * of the wrapped sink's writer. One entry per held record, so that a rescaled job's subtasks split
 * them whole.
 */
public final class GatedSinkState {
    enum Kind { HELD, FLOOR, INNER }

    final Kind kind;
    final byte[] value;
    final long key;
    final long timestamp;
    final boolean hasTimestamp;
    final int parallelism;
    final int subtask;
    final Object inner;

    private GatedSinkState(Kind kind, byte[] value, long key, long timestamp, boolean hasTimestamp,
            int parallelism, int subtask, Object inner) {
        this.kind = kind;
        this.value = value;
        this.key = key;
        this.timestamp = timestamp;
        this.hasTimestamp = hasTimestamp;
        this.parallelism = parallelism;
        this.subtask = subtask;
        this.inner = inner;
    }

    static GatedSinkState held(byte[] value, long key, long timestamp, boolean hasTimestamp) {
        return new GatedSinkState(Kind.HELD, value, key, timestamp, hasTimestamp, 0, 0, null);
    }

    /** The floor {@code key} of subtask {@code subtask} of {@code parallelism}. */
    static GatedSinkState floor(long key, int subtask, int parallelism) {
        return new GatedSinkState(Kind.FLOOR, null, key, 0, false, parallelism, subtask, null);
    }

    static GatedSinkState inner(Object state) {
        return new GatedSinkState(Kind.INNER, null, 0, 0, false, 0, 0, state);
    }

    /** The entries' bytes (version 1); the wrapped sink's entries through its own serializer. */
    static final class Serializer extends VersionedBytes.Serializer<GatedSinkState> {
        /** {@code inner}: the wrapped sink's state serializer (null: it keeps no state). */
        Serializer(SimpleVersionedSerializer<Object> inner) {
            super(inner, "state entry");
        }

        @Override
        void write(GatedSinkState state, DataOutputSerializer out) throws IOException {
            out.writeByte(state.kind.ordinal());
            switch (state.kind) {
                case HELD -> {
                    out.writeLong(state.key);
                    out.writeBoolean(state.hasTimestamp);
                    out.writeLong(state.timestamp);
                    out.writeInt(state.value.length);
                    out.write(state.value);
                }
                case FLOOR -> {
                    out.writeLong(state.key);
                    out.writeInt(state.subtask);
                    out.writeInt(state.parallelism);
                }
                case INNER -> VersionedBytes.write(out, inner, state.inner, "writer state");
                default -> throw new IOException("cutover GatedSink: unknown state entry " + state.kind);
            }
        }

        @Override
        GatedSinkState read(DataInputDeserializer in) throws IOException {
            int kind = in.readByte();
            if (kind == Kind.HELD.ordinal()) {
                long key = in.readLong();
                boolean hasTimestamp = in.readBoolean();
                long timestamp = in.readLong();
                return held(VersionedBytes.bytes(in), key, timestamp, hasTimestamp);
            }
            if (kind == Kind.FLOOR.ordinal()) {
                long key = in.readLong();
                int subtask = in.readInt();
                return floor(key, subtask, in.readInt());
            }
            if (kind == Kind.INNER.ordinal()) {
                return inner(VersionedBytes.read(in, inner, "writer state"));
            }
            throw new IOException("cutover GatedSink: unknown state entry kind " + kind);
        }
    }
}
