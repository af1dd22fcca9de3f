package dev.cutover.gate;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reads the tail of the plan the Rust client publishes for a pipeline (horizon and the last two
 * regions of the timeline per colour, under a sequence counter) from a direct buffer, without a
 * native call: a decision for a key the tail covers is a few loads and compares. The layout and
 * the protocol are the Rust side's ({@code cutover_client::tail}): read the sequence with acquire
 * ordering, read the words, an acquire fence, read the sequence again. The words are kept between
 * decisions and read again only when the sequence moved; a reader never spins on a writer (see
 * {@link #refresh}).
 *
 * <p>One reader per gate, used from the gate's thread only.
 */
final class TailReader {
    private static final VarHandle WORDS =
            MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.nativeOrder());
    private static final int SEQUENCE = 0;
    private static final int MODE = 2 * 8;
    private static final int HORIZON = 3 * 8;

    /** Decision codes, as {@link Gate#decideCode}; {@code NOT_COVERED}: ask the native gate. */
    static final int EMIT = 0;
    static final int DROP = 1;
    static final int HOLD = 2;
    static final int NOT_COVERED = -1;

    private final ByteBuffer buffer;
    /** Byte offset of this gate's colour's regions (BLUE 4, GREEN 8 words). */
    private final int regions;
    private long sequence = -1;
    private long mode;
    /** Nothing is covered before the first reading. */
    private long horizon = Long.MIN_VALUE;
    private long lastStart = Long.MAX_VALUE;
    private long last;
    private long beforeStart = Long.MAX_VALUE;
    private long before;
    /** The key {@link #decideRecord} decided last (the timestamp or the watermark). */
    private long recordKey;

    TailReader(ByteBuffer buffer, boolean blue) {
        this.buffer = buffer;
        this.regions = (blue ? 4 : 8) * 8;
    }

    /**
     * Reads the words again if the writer published since the last read; whether the words held
     * now may decide. While the writer publishes the plan right after the one read last (the
     * sequence one past it, odd), they may: deciding from them is deciding a moment earlier,
     * before that publication began, and the reader never waits on a writer the scheduler may
     * have paused. Otherwise (a plan the reader never saw was published meanwhile, or the words
     * changed under the read) they may not, and the caller asks the native gate.
     */
    private boolean refresh() {
        long start = (long) WORDS.getAcquire(buffer, SEQUENCE);
        if (start == sequence) {
            return true;
        }
        if ((start & 1) != 0) {
            return start - 1 == sequence;
        }
        long m = (long) WORDS.get(buffer, MODE);
        long h = (long) WORDS.get(buffer, HORIZON);
        long ls = (long) WORDS.get(buffer, regions);
        long l = (long) WORDS.get(buffer, regions + 8);
        long bs = (long) WORDS.get(buffer, regions + 16);
        long b = (long) WORDS.get(buffer, regions + 24);
        VarHandle.acquireFence();
        if ((long) WORDS.get(buffer, SEQUENCE) != start) {
            return false;
        }
        mode = m;
        horizon = h;
        lastStart = ls;
        last = l;
        beforeStart = bs;
        before = b;
        sequence = start;
        return true;
    }

    /** 0: no plan yet, 1: EVENT_TIME, 2: WATERMARK. */
    int mode() {
        return refresh() ? (int) mode : 0;
    }

    /** The decision for {@code key} (with {@link #refresh} done), or {@link #NOT_COVERED}. */
    private int decideFresh(long key) {
        if (key >= horizon) {
            return HOLD;
        }
        if (key >= lastStart) {
            return (int) last;
        }
        if (key >= beforeStart) {
            return (int) before;
        }
        return NOT_COVERED;
    }

    /** The decision for {@code key}, or {@link #NOT_COVERED} for keys older than the tail. */
    int decide(long key) {
        return refresh() ? decideFresh(key) : NOT_COVERED;
    }

    /**
     * The decision for a record, keyed as the plan's mode says: its timestamp (EVENT_TIME) or the
     * subtask's watermark (WATERMARK); {@link #NOT_COVERED} before the first plan, for a record
     * without a timestamp in EVENT_TIME mode, and for keys older than the tail.
     */
    int decideRecord(long timestamp, boolean hasTimestamp, long watermark) {
        if (!refresh()) {
            return NOT_COVERED;
        }
        if (mode == 2) {
            recordKey = watermark;
            return decideFresh(watermark);
        }
        if (mode == 1 && hasTimestamp) {
            recordKey = timestamp;
            return decideFresh(timestamp);
        }
        return NOT_COVERED;
    }

    /** The key the last {@link #decideRecord} that returned a decision used. */
    long recordKey() {
        return recordKey;
    }

    /**
     * Decides every key of {@code keys} from one reading of the tail (codes as {@link #decide}),
     * all {@link #NOT_COVERED} when that reading may not decide.
     */
    void decideAll(long[] keys, int[] out) {
        boolean usable = refresh();
        for (int i = 0; i < keys.length; i++) {
            out[i] = usable ? decideFresh(keys[i]) : NOT_COVERED;
        }
    }
}
