package dev.cutover.gate;

/**
 * The native entry points of the cutover gate client (the Rust client, loaded through {@link
 * NativeLoader}). Handles are owned by {@link Gate}; use that class.
 */
final class NativeGate {
    static {
        NativeLoader.load();
    }

    private NativeGate() {}

    static native long open(
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
            String tokenFile);

    static native int decide(long gate, long key);

    static native int decideRecord(long gate, long timestamp, boolean hasTimestamp, long watermark);

    static native int peek(long gate, long key);

    static native int baseline(long gate, long key);

    static native void observeWatermark(long gate, long watermark);

    static native int waitUntilDecidable(long gate, long key, long timeoutMillis);

    static native void setHeld(long gate, long count, long lowestHeld);

    static native void setIdle(long gate, boolean idle);

    static native void trackCheckpoints(long gate, long restoredWatermark);

    static native void checkpointCompleted(long gate, long watermark);

    static native void finish(long gate);

    static native int mode(long gate);

    static native long emitted(long gate);

    static native long dropped(long gate);

    static native java.nio.ByteBuffer tailBuffer(long gate);

    static native void addCounts(long gate, long emitted, long dropped, long maxKey);

    static native String connectionReport(long gate);

    static native long testInstallPlan(long gate, long seed, long epoch);

    static native int connected(long gate);

    static native long epoch(long gate);

    static native String checkEndpoint(String endpoint);

    static native void close(long gate);
}
