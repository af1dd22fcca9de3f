package dev.cutover.e2e;

import dev.cutover.gate.Decision;
import dev.cutover.gate.Gate;
import dev.cutover.gate.TailTesting;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The Java tail reader against the Rust plan: 20,000 generated plans (one to five segments,
 * horizons and retirement floors anywhere, extremes included) installed through the Rust client
 * into one pipeline; for both colours and every key around their boundaries (and Long.MIN_VALUE,
 * Long.MAX_VALUE), a decision the tail gives must be the plan's (the native peek). Then a writer
 * thread swaps two plans as fast as it can while this thread reads the tail: every reading must
 * be one plan's or the other's, whole.
 *
 * <pre>TailAgreement</pre>
 *
 * Prints one JSON object as its last line.
 */
public final class TailAgreement {
    private TailAgreement() {}

    public static void main(String[] args) throws Exception {
        // Nobody listens there: the plans come from the test alone.
        String endpoint = "http://127.0.0.1:9";
        try (Gate blue = Gate.open(endpoint, "tail-agreement", "BLUE", "job-b", "gate", 0, 1, 0);
                Gate green = Gate.open(endpoint, "tail-agreement", "GREEN", "job-g", "gate", 0, 1, 0)) {
            long[] keys = new long[51 + 6];
            for (int i = 0; i <= 50; i++) {
                keys[i] = i - 25;
            }
            long[] extremes = {Long.MIN_VALUE, Long.MIN_VALUE + 1, Long.MIN_VALUE + 2,
                Long.MAX_VALUE - 2, Long.MAX_VALUE - 1, Long.MAX_VALUE};
            System.arraycopy(extremes, 0, keys, 51, extremes.length);
            int[] fast = new int[keys.length];
            long checked = 0;
            long covered = 0;
            long disagreements = 0;
            String first = null;
            int plans = 20_000;
            for (int seed = 1; seed <= plans; seed++) {
                TailTesting.installPlan(blue, seed, seed);
                for (Gate gate : new Gate[] {blue, green}) {
                    TailTesting.decideFromTail(gate, keys, fast);
                    for (int i = 0; i < keys.length; i++) {
                        checked++;
                        if (fast[i] < 0) {
                            continue;
                        }
                        covered++;
                        int expected = codeOf(gate.peek(keys[i]));
                        if (fast[i] != expected) {
                            disagreements++;
                            if (first == null) {
                                first = "seed " + seed + " key " + keys[i] + ": tail " + fast[i] + ", plan " + expected;
                            }
                        }
                    }
                }
            }

            // Two plans swapped while reading: never a mix.
            int[] a = new int[keys.length];
            int[] b = new int[keys.length];
            TailTesting.installPlan(blue, 101, plans + 1);
            TailTesting.decideFromTail(blue, keys, a);
            TailTesting.installPlan(blue, 202, plans + 2);
            TailTesting.decideFromTail(blue, keys, b);
            AtomicBoolean stop = new AtomicBoolean();
            Thread writer = new Thread(() -> {
                long epoch = plans + 3;
                while (!stop.get()) {
                    TailTesting.installPlan(blue, epoch % 2 == 0 ? 101 : 202, epoch++);
                }
            });
            writer.start();
            long reads = 0;
            long torn = 0;
            long handedToNative = 0;
            int[] none = new int[keys.length];
            Arrays.fill(none, -1);
            long started = System.nanoTime();
            while (System.nanoTime() - started < 2_000_000_000L) {
                TailTesting.decideFromTail(blue, keys, fast);
                reads++;
                if (Arrays.equals(fast, none)) {
                    // A reading during a publication it may not decide from: the native gate decides.
                    handedToNative++;
                } else if (!Arrays.equals(fast, a) && !Arrays.equals(fast, b)) {
                    torn++;
                }
            }
            stop.set(true);
            writer.join();
            System.out.println("{\"plans\": " + plans + ", \"decisions_checked\": " + checked
                    + ", \"covered_by_tail\": " + covered + ", \"disagreements\": " + disagreements
                    + ", \"first_disagreement\": " + (first == null ? "null" : "\"" + first + "\"")
                    + ", \"concurrent_reads\": " + reads + ", \"torn\": " + torn
                    + ", \"handed_to_native\": " + handedToNative
                    + ", \"swapped_plans_differ\": " + !Arrays.equals(a, b) + "}");
        }
        System.exit(0);
    }

    private static int codeOf(Decision decision) {
        switch (decision) {
            case EMIT:
                return 0;
            case DROP:
                return 1;
            default:
                return 2;
        }
    }
}
