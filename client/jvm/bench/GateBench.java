package dev.cutover.bench;

import dev.cutover.gate.Decision;
import dev.cutover.gate.Gate;
import dev.cutover.gate.GateConfig;
import dev.cutover.gate.GateOperator;
import dev.cutover.gate.GatedSink;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * What the JVM gate costs: nanoseconds per {@code Gate.decide} call (a warmed-up loop over a gate
 * whose plan decides every key) beside an empty native call, and the throughput of the minimal
 * Flink job (parallelism 1, a generated source, timestamps, a discarding sink) without a gate,
 * with an identity map, with {@code GateOperator} and with {@code GatedSink}, each with object
 * reuse off and on. Prints one JSON line: records per second, and for each variant the
 * nanoseconds it adds per record and the throughput it loses against the job without a gate.
 *
 * <p>Each job shape runs in a JVM of its own (as a job runs on its task managers), so that the
 * JIT compiles Flink's record path for that shape alone rather than for all of them at once.
 *
 * <p>Arguments: coordinator address, calls per timed round, records per Flink run; or {@code
 * --job} address, records, variant, object reuse: one shape's records per second (best of five).
 */
public final class GateBench {
    private GateBench() {}

    public static void main(String[] args) throws Exception {
        if (args[0].equals("--job")) {
            System.out.println(bestThroughput(
                    args[1], Long.parseLong(args[2]), Variant.valueOf(args[3]), Boolean.parseBoolean(args[4])));
            return;
        }
        String endpoint = args[0];
        long calls = Long.parseLong(args[1]);
        long records = Long.parseLong(args[2]);

        double nanos;
        double baseline;
        try (Gate gate = Gate.open(endpoint, "bench-decide", "BLUE", "bench", "gate", 0, 1, 0)) {
            gate.observeWatermark(1L << 40);
            if (gate.waitUntilDecidable(1 << 20, Duration.ofSeconds(30)) != Decision.EMIT) {
                throw new IllegalStateException("the bench gate never got a plan");
            }
            long sink = 0;
            for (int warm = 0; warm < 3; warm++) {
                sink += loop(gate, calls);
            }
            double best = Double.MAX_VALUE;
            for (int round = 0; round < 5; round++) {
                long start = System.nanoTime();
                sink += loop(gate, calls);
                best = Math.min(best, (double) (System.nanoTime() - start) / calls);
            }
            nanos = best;
            double bestBaseline = Double.MAX_VALUE;
            for (int round = 0; round < 8; round++) {
                long start = System.nanoTime();
                for (long i = 0; i < calls; i++) {
                    sink += gate.nativeBaseline(i & 1023);
                }
                if (round >= 3) {
                    bestBaseline = Math.min(bestBaseline, (double) (System.nanoTime() - start) / calls);
                }
            }
            baseline = bestBaseline;
            if (sink == 42) {
                System.err.println("(unlikely)");
            }
        }

        // Flink: the same job without the gate, with an identity map where the gate would be
        // (what any extra chained operator costs), with GateOperator, and with the gate inside
        // the sink (GatedSink); each with object reuse off and on.
        StringBuilder json = new StringBuilder();
        json.append(String.format("{\"decide_ns\": %.2f, \"empty_native_call_ns\": %.2f, \"calls\": %d,"
                + " \"records\": %d", nanos, baseline, calls, records));
        // Two passes over every shape, the second in the opposite order, best of both: a slow
        // spell of the machine then rarely hits the same shape twice.
        double[][] bests = new double[2][Variant.values().length];
        for (int pass = 0; pass < 2; pass++) {
            for (int reuse = 0; reuse < 2; reuse++) {
                for (int i = 0; i < Variant.values().length; i++) {
                    Variant variant = Variant.values()[pass == 0 ? i : Variant.values().length - 1 - i];
                    double perSecond = inItsOwnJvm(endpoint, records, variant, reuse == 1);
                    bests[reuse][variant.ordinal()] = Math.max(bests[reuse][variant.ordinal()], perSecond);
                }
            }
        }
        for (boolean reuse : new boolean[] {false, true}) {
            double[] best = bests[reuse ? 1 : 0];
            double without = best[Variant.NONE.ordinal()];
            String prefix = reuse ? "object_reuse_on" : "object_reuse_off";
            for (Variant variant : Variant.values()) {
                double perSecond = best[variant.ordinal()];
                json.append(String.format(", \"%s_%s_records_per_s\": %.0f", prefix, variant.key, perSecond));
                if (variant != Variant.NONE) {
                    json.append(String.format(", \"%s_%s_ns_added\": %.1f, \"%s_%s_loss_percent\": %.2f",
                            prefix, variant.key, 1e9 / perSecond - 1e9 / without,
                            prefix, variant.key, 100.0 * (without - perSecond) / without));
                }
            }
        }
        System.out.println(json.append("}"));
    }

    /** What stands between the timestamps and the discarding sink. */
    private enum Variant {
        NONE("no_gate"),
        IDENTITY("identity_map"),
        OPERATOR("gate_operator"),
        SINK("gated_sink");

        final String key;

        Variant(String key) {
            this.key = key;
        }
    }

    /** {@code calls} decisions over 1,024 keys below the horizon; returns the emits. */
    private static long loop(Gate gate, long calls) {
        long emitted = 0;
        for (long i = 0; i < calls; i++) {
            emitted += gate.decideCode(i & 1023) == 0 ? 1 : 0;
        }
        return emitted;
    }

    /** {@link #bestThroughput} in a child JVM on this one's classpath. */
    private static double inItsOwnJvm(String endpoint, long records, Variant variant, boolean reuse)
            throws Exception {
        Process child = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        // A fixed, pre-touched heap: the runs differ less (garbage collection
                        // sizing the heap as it goes is most of the noise).
                        "-Xms3g", "-Xmx3g", "-XX:+AlwaysPreTouch",
                        "-cp", System.getProperty("java.class.path"),
                        GateBench.class.getName(), "--job", endpoint, String.valueOf(records),
                        variant.name(), String.valueOf(reuse))
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (child.waitFor() != 0) {
            throw new IllegalStateException("the " + variant + " job failed (exit " + child.exitValue() + ")");
        }
        String[] lines = out.split("\n");
        return Double.parseDouble(lines[lines.length - 1]);
    }

    /**
     * Records per second of {@code variant}, best of five runs after one to warm up. Each run is
     * timed in its steady state, from the record a fifth of the way in (the gate connected, its
     * first plan installed, the JIT done) to the last, as the source's map sees them: a job's
     * start and end are left out.
     */
    private static double bestThroughput(String endpoint, long records, Variant variant, boolean reuse)
            throws Exception {
        double best = 0;
        for (int round = 0; round < 6; round++) {
            double perSecond = (records - 1 - records / 5) / seconds(records, endpoint, variant, reuse);
            if (round > 0) {
                best = Math.max(best, perSecond);
            }
        }
        return best;
    }

    /** When the source's map saw the timed run's first and last record ({@code System.nanoTime}). */
    private static volatile long firstRecordAt;
    private static volatile long lastRecordAt;

    /** Turns a number into a record and notes when the timed run's first and last passed. */
    private static final class Timed implements MapFunction<Long, Tuple2<Long, Long>> {
        private static final long serialVersionUID = 1L;
        private final long first;
        private final long last;

        Timed(long first, long last) {
            this.first = first;
            this.last = last;
        }

        @Override
        public Tuple2<Long, Long> map(Long id) {
            if (id == first) {
                firstRecordAt = System.nanoTime();
            } else if (id == last) {
                lastRecordAt = System.nanoTime();
            }
            return Tuple2.of(id, id);
        }
    }

    /** Seconds one run of the minimal job with {@code variant} takes from the record a fifth in to the last. */
    private static double seconds(long records, String endpoint, Variant variant, boolean objectReuse)
            throws Exception {
        Configuration conf = new Configuration();
        conf.setString("pipeline.auto-watermark-interval", "50 ms");
        conf.setString("pipeline.object-reuse", String.valueOf(objectReuse));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        DataStream<Tuple2<Long, Long>> timed = env.fromSequence(0, records - 1)
                .map(new Timed(records / 5, records - 1))
                .returns(Types.TUPLE(Types.LONG, Types.LONG))
                .assignTimestampsAndWatermarks(WatermarkStrategy.<Tuple2<Long, Long>>forMonotonousTimestamps()
                        .withTimestampAssigner((record, previous) -> record.f1));
        GateConfig config = GateConfig.fromJobConfiguration()
                .coordinator(endpoint)
                .pipeline("bench-flink-" + System.nanoTime())
                .colour("BLUE");
        switch (variant) {
            case NONE -> timed.sinkTo(new DiscardingSink<>());
            case IDENTITY -> timed.map(record -> record).returns(timed.getType()).sinkTo(new DiscardingSink<>());
            case OPERATOR -> GateOperator.before(timed, config).sinkTo(new DiscardingSink<>());
            case SINK -> timed.sinkTo(GatedSink.wrap(new DiscardingSink<>(), config));
            default -> throw new IllegalArgumentException(variant.toString());
        }
        firstRecordAt = 0;
        lastRecordAt = 0;
        env.execute(variant.key);
        if (firstRecordAt == 0 || lastRecordAt <= firstRecordAt) {
            throw new IllegalStateException("the job's records were not timed (another classloader?)");
        }
        return (lastRecordAt - firstRecordAt) / 1e9;
    }
}
