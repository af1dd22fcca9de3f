package dev.cutover.gate;

import java.io.IOException;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;

/**
 * How a {@link GatedSink} carries the wrapped sink's writer states and committables inside its
 * own: the wrapped serializer's version, then its bytes with their length. Lengths read back are
 * checked against what remains.
 */
final class VersionedBytes {
    private VersionedBytes() {}

    /** Writes {@code object} through {@code serializer} (null: the wrapped sink has none, an error). */
    static void write(DataOutputSerializer out, SimpleVersionedSerializer<Object> serializer, Object object, String what)
            throws IOException {
        if (serializer == null) {
            throw new IOException("cutover GatedSink: a wrapped " + what + " without the wrapped sink's serializer");
        }
        byte[] bytes = serializer.serialize(object);
        out.writeInt(serializer.getVersion());
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    /** Reads an object {@link #write} wrote (null serializer: the sink wrapped now has none, an error). */
    static Object read(DataInputDeserializer in, SimpleVersionedSerializer<Object> serializer, String what)
            throws IOException {
        if (serializer == null) {
            throw new IOException("cutover GatedSink: the checkpoint holds a wrapped " + what
                    + ", but the sink wrapped now has none");
        }
        int version = in.readInt();
        return serializer.deserialize(version, bytes(in));
    }

    /** A length-prefixed byte array. */
    static byte[] bytes(DataInputDeserializer in) throws IOException {
        int length = in.readInt();
        if (length < 0 || length > in.available()) {
            throw new IOException("cutover GatedSink: an entry announces " + length + " bytes; "
                    + in.available() + " remain");
        }
        byte[] bytes = new byte[length];
        in.readFully(bytes);
        return bytes;
    }

    /**
     * A version 1 serializer of the gate's own entries, which carry the wrapped sink's objects
     * through {@code inner} (null: the wrapped sink has no serializer for them).
     */
    abstract static class Serializer<E> implements SimpleVersionedSerializer<E> {
        final SimpleVersionedSerializer<Object> inner;
        private final String what;

        Serializer(SimpleVersionedSerializer<Object> inner, String what) {
            this.inner = inner;
            this.what = what;
        }

        abstract void write(E entry, DataOutputSerializer out) throws IOException;

        abstract E read(DataInputDeserializer in) throws IOException;

        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(E entry) throws IOException {
            DataOutputSerializer out = new DataOutputSerializer(64);
            write(entry, out);
            return out.getCopyOfBuffer();
        }

        @Override
        public E deserialize(int version, byte[] serialized) throws IOException {
            if (version != 1) {
                throw new IOException("cutover GatedSink: " + what + " version " + version
                        + " is not one this gate reads (1)");
            }
            return read(new DataInputDeserializer(serialized));
        }
    }
}
