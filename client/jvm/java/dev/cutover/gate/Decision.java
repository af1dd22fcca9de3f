package dev.cutover.gate;

/** What a gate decided about one record. */
public enum Decision {
    /** This job emits the record. */
    EMIT,
    /** The other colour emits it: discard it here. */
    DROP,
    /** Not decidable yet (the key is at or above the horizon): keep it and ask again. */
    HOLD;

    private static final Decision[] BY_CODE = values();

    static Decision of(int code) {
        if (code < 0 || code >= BY_CODE.length) {
            throw new IllegalStateException("cutover gate: the native library failed (code " + code + ")");
        }
        return BY_CODE[code];
    }
}
