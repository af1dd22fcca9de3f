package dev.cutover.gate;

/**
 * For tests of the Java tail reader only (tests/flink/jvm/TailAgreement.java): installs generated
 * plans into a gate's pipeline as if the coordinator had sent them, and reads decisions from the
 * published tail. A gate serving a job never needs it.
 */
public final class TailTesting {
    private TailTesting() {}

    /** Installs the plan generated from {@code seed} at {@code epoch}; returns its segment count. */
    public static long installPlan(Gate gate, long seed, long epoch) {
        return NativeGate.testInstallPlan(gate.handleForTests(), seed, epoch);
    }

    /**
     * Decides every key from one reading of the published tail: 0 emit, 1 drop, 2 hold, -1 not
     * covered (the native gate decides those; every key, when the reading came while plans the
     * reader had not seen were being published).
     */
    public static void decideFromTail(Gate gate, long[] keys, int[] out) {
        TailReader tail = gate.tailForTests();
        if (tail == null) {
            throw new IllegalStateException("cutover gate: no published tail");
        }
        tail.decideAll(keys, out);
    }
}
