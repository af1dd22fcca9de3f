package dev.cutover.bench;

import dev.cutover.gate.Decision;
import dev.cutover.gate.Gate;
import dev.cutover.gate.GateConfig;
import dev.cutover.gate.GateOperator;
import java.time.Duration;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * What the JVM gate costs: nanoseconds per {@code Gate.decide} call (a warmed-up loop over a gate
 * whose plan decides every key) beside an empty native call, and the throughput of one Flink job (parallelism 1, a generated
 * source, timestamps, a discarding sink) with and without the gate. Prints one JSON line.
 *
 * <p>Arguments: coordinator address, calls per timed round, records per Flink run.
 */
public final class GateBench {
    private GateBench() {}

    public static void main(String[] args) throws Exception {
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

        // Flink: the same job without the gate, with an identity map in its place (what any
        // extra chained operator costs), and with the gate; alternating, best of three.
        double without = 0, identity = 0, with = 0;
        for (int round = 0; round < 3; round++) {
            without = Math.max(without, throughput(records, null, false));
            identity = Math.max(identity, throughput(records, null, true));
            with = Math.max(with, throughput(records, endpoint, false));
        }
        System.out.printf(
                "{\"decide_ns\": %.2f, \"empty_native_call_ns\": %.2f, \"calls\": %d, \"records\": %d,"
                        + " \"records_per_s_without_gate\": %.0f, \"records_per_s_identity_map\": %.0f,"
                        + " \"records_per_s_with_gate\": %.0f, \"throughput_loss_percent\": %.2f,"
                        + " \"ns_per_record_added_by_gate\": %.1f, \"ns_per_record_added_by_identity_map\": %.1f}%n",
                nanos, baseline, calls, records, without, identity, with, 100.0 * (without - with) / without,
                1e9 / with - 1e9 / without, 1e9 / identity - 1e9 / without);
    }

    /** {@code calls} decisions over 1,024 keys below the horizon; returns the emits. */
    private static long loop(Gate gate, long calls) {
        long emitted = 0;
        for (long i = 0; i < calls; i++) {
            emitted += gate.decideCode(i & 1023) == 0 ? 1 : 0;
        }
        return emitted;
    }

    /** Records per second of one run, through the gate when {@code endpoint} is set. */
    private static double throughput(long records, String endpoint, boolean identity) throws Exception {
        Configuration conf = new Configuration();
        conf.setString("pipeline.auto-watermark-interval", "50 ms");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        DataStream<Tuple2<Long, Long>> timed = env.fromSequence(0, records - 1)
                .map(id -> Tuple2.of(id, id))
                .returns(Types.TUPLE(Types.LONG, Types.LONG))
                .assignTimestampsAndWatermarks(WatermarkStrategy.<Tuple2<Long, Long>>forMonotonousTimestamps()
                        .withTimestampAssigner((record, previous) -> record.f1));
        DataStream<Tuple2<Long, Long>> out = timed;
        if (identity) {
            out = timed.map(record -> record).returns(timed.getType());
        }
        if (endpoint != null) {
            GateConfig config = GateConfig.fromJobConfiguration()
                    .coordinator(endpoint)
                    .pipeline("bench-flink-" + System.nanoTime())
                    .colour("BLUE");
            out = GateOperator.before(timed, config);
        }
        out.sinkTo(new DiscardingSink<>());
        long start = System.nanoTime();
        env.execute(endpoint == null ? "without gate" : "with gate");
        return records / ((System.nanoTime() - start) / 1e9);
    }
}
