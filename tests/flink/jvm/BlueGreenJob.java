package dev.cutover.e2e;

import dev.cutover.gate.GateConfig;
import dev.cutover.gate.GateOperator;
import dev.cutover.gate.GatedSink;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * One colour of the JVM end-to-end test: a real Java Flink job (local execution) reading the
 * shared bounded input (record id, event time), paced, with per-event watermarks, the cutover
 * gate before a file sink. Flags as tests/flink/job.py's, and {@code --gate sink}: the gate inside
 * the sink ({@code GatedSink} around a two-phase sink) instead of an operator before it.
 */
public final class BlueGreenJob {
    private BlueGreenJob() {}

    /** Paces the source so that both jobs run side by side for a while. */
    static final class Throttle extends RichMapFunction<Tuple2<Long, Long>, Tuple2<Long, Long>> {
        private final double perSecond;
        private transient long next;

        Throttle(double perSecond) {
            this.perSecond = perSecond;
        }

        @Override
        public Tuple2<Long, Long> map(Tuple2<Long, Long> value) throws Exception {
            long now = System.nanoTime();
            if (next == 0) {
                next = now;
            }
            if (now < next) {
                long wait = next - now;
                Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            }
            next += (long) (1e9 / perSecond);
            return value;
        }
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        List<Tuple2<Long, Long>> records = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args.get("input")))) {
            String[] parts = line.trim().split("\\s+");
            records.add(Tuple2.of(Long.parseLong(parts[0]), Long.parseLong(parts[1])));
        }
        String colour = args.get("colour");
        String pipeline = args.get("pipeline");

        Configuration conf = new Configuration();
        conf.setString("restart-strategy.type", "none");
        conf.setString("pipeline.auto-watermark-interval", "10 ms");
        conf.setString("execution.checkpointing.interval", "1 s");
        // Mutual TLS through the gate's Flink configuration keys (not the
        // environment): the files `cutover dev-pki` wrote.
        if (args.containsKey("tls-dir")) {
            Path tls = Path.of(args.get("tls-dir"));
            conf.setString(GateConfig.TLS_CA_KEY, tls.resolve("ca.pem").toString());
            conf.setString(GateConfig.TLS_CERT_KEY, tls.resolve("client.pem").toString());
            conf.setString(GateConfig.TLS_KEY_KEY, tls.resolve("client-key.pem").toString());
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(Integer.parseInt(args.get("parallelism")));

        DataStream<Tuple2<Long, Long>> timed = env.fromData(records)
                .map(new Throttle(Double.parseDouble(args.getOrDefault("rate", "1000"))))
                .setParallelism(1)
                .assignTimestampsAndWatermarks(WatermarkStrategy.<Tuple2<Long, Long>>forBoundedOutOfOrderness(
                                Duration.ofMillis(Long.parseLong(args.getOrDefault("out-of-orderness-ms", "300"))))
                        .withTimestampAssigner((record, previous) -> record.f1))
                .setParallelism(1);
        GateConfig gate = GateConfig.fromJobConfiguration()
                .coordinator(args.get("endpoint"))
                .pipeline(pipeline)
                .colour(colour);
        if ("sink".equals(args.getOrDefault("gate", "operator"))) {
            // A sink with its own topology is refused, with the alternative.
            try {
                GatedSink.wrap(FileSink.forRowFormat(new org.apache.flink.core.fs.Path(args.get("output")),
                        new SimpleStringEncoder<String>()).build(), gate);
                throw new IllegalStateException("GatedSink wrapped a FileSink, which adds a pre-commit topology");
            } catch (IllegalArgumentException refused) {
                if (!refused.getMessage().contains("GateOperator.before")) {
                    throw refused;
                }
            }
            timed.map(record -> String.valueOf(record.f0))
                    .returns(Types.STRING)
                    .sinkTo(GatedSink.wrap(new CommittedLinesSink(args.get("output")), gate))
                    .uid("cutover-gated-sink");
        } else {
            GateOperator.before(timed, gate)
                    .map(record -> String.valueOf(record.f0))
                    .returns(Types.STRING)
                    .sinkTo(FileSink.forRowFormat(
                                    new org.apache.flink.core.fs.Path(args.get("output")),
                                    new SimpleStringEncoder<String>())
                            .build());
        }
        env.execute("cutover e2e " + pipeline + " " + colour);
    }
}
