package dev.cutover.e2e;

import dev.cutover.gate.GateConfig;
import dev.cutover.gate.GateOperator;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * What the JVM gate tells a Flink user who got something wrong, in real Java Flink jobs (local
 * execution): an endpoint without a scheme is refused when the job is built; a job whose
 * coordinator cannot be reached fails at the end of its input saying it never connected (and logs
 * its held records meanwhile: run-jvm.sh reads the log); a running gate's figures are Flink
 * metrics, read through Flink's Prometheus reporter.
 *
 * <pre>Diagnostics UNREACHABLE_ENDPOINT SERVING_ENDPOINT PROMETHEUS_PORT</pre>
 *
 * Prints one JSON object as its last line.
 */
public final class Diagnostics {
    private Diagnostics() {}

    /** Paces records so that the job runs for a while. */
    static final class Pace extends RichMapFunction<Long, Long> {
        private final long sleepMillis;

        Pace(long sleepMillis) {
            this.sleepMillis = sleepMillis;
        }

        @Override
        public Long map(Long value) throws Exception {
            Thread.sleep(sleepMillis);
            return value;
        }
    }

    private static StreamExecutionEnvironment environment(Integer prometheusPort) {
        Configuration conf = new Configuration();
        conf.setString("restart-strategy.type", "none");
        conf.setString("pipeline.auto-watermark-interval", "10 ms");
        if (prometheusPort != null) {
            conf.setString("metrics.reporter.prom.factory.class",
                    "org.apache.flink.metrics.prometheus.PrometheusReporterFactory");
            conf.setString("metrics.reporter.prom.port", String.valueOf(prometheusPort));
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        return env;
    }

    private static void gatedJob(StreamExecutionEnvironment env, int records, long sleepMillis, GateConfig gate) {
        List<Long> keys = new ArrayList<>();
        for (int i = 0; i < records; i++) {
            keys.add(1_700_000_000_000L + i * 10L);
        }
        DataStream<Long> timed = env.fromData(keys)
                .map(new Pace(sleepMillis))
                .assignTimestampsAndWatermarks(WatermarkStrategy.<Long>forMonotonousTimestamps()
                        .withTimestampAssigner((value, previous) -> value));
        GateOperator.before(timed, gate).sinkTo(new DiscardingSink<>());
    }

    private static String schemeLess() {
        try {
            GateConfig.fromJobConfiguration().coordinator("127.0.0.1:7700");
            return null;
        } catch (IllegalArgumentException refused) {
            return refused.getMessage();
        }
    }

    private static String unreachable(String endpoint) {
        StreamExecutionEnvironment env = environment(null);
        gatedJob(env, 40, 50, GateConfig.fromJobConfiguration()
                .coordinator(endpoint)
                .pipeline("diagnostics")
                .colour("GREEN")
                .holdWarningAfter(Duration.ofMillis(500))
                .endOfInputTimeout(Duration.ofSeconds(2)));
        try {
            env.execute("cutover diagnostics unreachable");
            return null;
        } catch (Exception failed) {
            Throwable cause = failed;
            while (cause.getCause() != null && !cause.getMessage().contains("cutover gate")) {
                cause = cause.getCause();
            }
            return cause.getMessage();
        }
    }

    private static Map<String, Double> metrics(String endpoint, int prometheusPort) throws Exception {
        StreamExecutionEnvironment env = environment(prometheusPort);
        gatedJob(env, 2_000, 20, GateConfig.fromJobConfiguration()
                .coordinator(endpoint)
                .pipeline("diagnostics-metrics")
                .colour("GREEN"));
        JobClient job = env.executeAsync("cutover diagnostics metrics");
        Pattern sample = Pattern.compile("^flink_\\w*_cutover_(\\w+)\\{[^}]*\\} (\\S+)$", Pattern.MULTILINE);
        HttpClient http = HttpClient.newHttpClient();
        URI uri = URI.create("http://127.0.0.1:" + prometheusPort + "/metrics");
        Map<String, Double> found = new TreeMap<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        try {
            while (System.nanoTime() < deadline) {
                try {
                    String text = http.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString())
                            .body();
                    Matcher m = sample.matcher(text);
                    while (m.find()) {
                        found.put(m.group(1), Double.parseDouble(m.group(2)));
                    }
                } catch (java.io.IOException notYet) {
                    // The reporter starts with the job's task manager.
                }
                if (found.getOrDefault("emitted", 0.0) > 0 && found.getOrDefault("connected", 0.0) == 1.0
                        && found.getOrDefault("epoch", -1.0) >= 0) {
                    break;
                }
                Thread.sleep(200);
            }
        } finally {
            job.cancel().get();
        }
        return found;
    }

    private static String json(String text) {
        if (text == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        String refused = schemeLess();
        String failure = unreachable(args[0]);
        Map<String, Double> figures = metrics(args[1], Integer.parseInt(args[2]));
        StringBuilder metrics = new StringBuilder("{");
        for (var entry : figures.entrySet()) {
            if (metrics.length() > 1) {
                metrics.append(", ");
            }
            metrics.append(json(entry.getKey())).append(": ").append(entry.getValue());
        }
        metrics.append('}');
        System.out.println("{\"scheme_less\": " + json(refused) + ", \"unreachable\": " + json(failure)
                + ", \"metrics\": " + metrics + "}");
        System.exit(0);
    }
}
