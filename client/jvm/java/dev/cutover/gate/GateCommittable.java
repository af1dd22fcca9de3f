package dev.cutover.gate;

import java.io.IOException;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;

/**
 * What a {@link GatedSink} writer hands its committer at a checkpoint: the wrapped sink's own
 * committables, and the gate's marker (its checkpoint floor). Flink commits both once the
 * checkpoint completes: the marker is how the gate inside a sink learns that a checkpoint it took
 * part in completed, which a sink writer is not told otherwise.
 */
public final class GateCommittable {
    /** The wrapped sink's committable (null for a marker). */
    final Object inner;
    /** The writer that took the checkpoint (markers). */
    final String writer;
    /** The writer's count of markers, increasing (markers). */
    final long sequence;
    /** The lowest key the writer could decide again after restoring this checkpoint (markers). */
    final long floor;

    private GateCommittable(Object inner, String writer, long sequence, long floor) {
        this.inner = inner;
        this.writer = writer;
        this.sequence = sequence;
        this.floor = floor;
    }

    static GateCommittable of(Object inner) {
        return new GateCommittable(inner, null, 0, 0);
    }

    static GateCommittable marker(String writer, long sequence, long floor) {
        return new GateCommittable(null, writer, sequence, floor);
    }

    boolean isMarker() {
        return writer != null;
    }

    /** The committables' bytes (version 1); the wrapped sink's through its own serializer. */
    static final class Serializer extends VersionedBytes.Serializer<GateCommittable> {
        /** {@code inner}: the wrapped sink's committable serializer (null: it commits nothing). */
        Serializer(SimpleVersionedSerializer<Object> inner) {
            super(inner, "committable");
        }

        @Override
        void write(GateCommittable committable, DataOutputSerializer out) throws IOException {
            if (committable.isMarker()) {
                out.writeByte(1);
                out.writeUTF(committable.writer);
                out.writeLong(committable.sequence);
                out.writeLong(committable.floor);
            } else {
                out.writeByte(0);
                VersionedBytes.write(out, inner, committable.inner, "committable");
            }
        }

        @Override
        GateCommittable read(DataInputDeserializer in) throws IOException {
            int kind = in.readByte();
            if (kind == 1) {
                String writer = in.readUTF();
                long sequence = in.readLong();
                return marker(writer, sequence, in.readLong());
            }
            if (kind != 0) {
                throw new IOException("cutover GatedSink: unknown committable kind " + kind);
            }
            return of(VersionedBytes.read(in, inner, "committable"));
        }
    }
}
