package dev.cutover.e2e;

import dev.cutover.gate.GateConfig;
import dev.cutover.gate.GateOperator;
import dev.cutover.gate.GatedSink;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * Held records survive a savepoint and a change of parallelism. A real Java Flink job (gate at
 * parallelism 2) holds 1,000 records far above the horizon (its watermark stays at 0), is stopped
 * with a savepoint, and restarted from it with the gate at parallelism 3 and moving watermarks:
 * every held record must come out exactly once, with its own timestamp, and the new records
 * after it too. Prints one JSON line; exits non-zero if anything is lost, repeated or altered.
 *
 * <p>Arguments: coordinator address, pipeline, work directory, the cutover binary, and {@code
 * operator} or {@code sink}: the gate as an operator before a logging step, or inside a logging
 * sink ({@code GatedSink}, its held records in the sink writer's state).
 */
public final class HeldAcrossRescale {
    private HeldAcrossRescale() {}

    /** Records before the savepoint; all are held. */
    static final int HELD = 1_000;
    /** Records the restored job lets through in all (the held ones included). */
    static final int LIMIT = 2_000;
    /** Event time of record i: far above the first horizon (one 1 s window past watermark 0). */
    static final long BASE = 1_000_000;
    static final Duration WAIT = Duration.ofMinutes(2);

    /** Paces the source and lets nothing through until the go file exists. */
    static final class Start extends RichMapFunction<Long, Long> {
        private final String goFile;

        Start(String goFile) {
            this.goFile = goFile;
        }

        @Override
        public Long map(Long value) throws Exception {
            while (!Files.exists(Path.of(goFile))) {
                Thread.sleep(20);
            }
            Thread.sleep(0, 500_000);
            return value;
        }
    }

    /** Phase one's watermarks: 0, whatever the records say. */
    static final class StuckAtZero implements WatermarkGenerator<Long> {
        @Override
        public void onEvent(Long event, long timestamp, WatermarkOutput output) {}

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
            output.emitWatermark(new Watermark(0));
        }
    }

    /** Appends "index timestamp" per record to one file per subtask, flushed per line. */
    static final class Log extends ProcessFunction<Long, Long> {
        private final String prefix;
        private transient BufferedWriter out;

        Log(String prefix) {
            this.prefix = prefix;
        }

        @Override
        public void open(OpenContext context) throws IOException {
            int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
            out = Files.newBufferedWriter(
                    Path.of(prefix + "-" + subtask + ".txt"),
                    StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        }

        @Override
        public void processElement(Long value, Context ctx, Collector<Long> collector) throws IOException {
            out.write(value + " " + ctx.timestamp() + "\n");
            out.flush();
            collector.collect(value);
        }

        @Override
        public void close() throws IOException {
            if (out != null) {
                out.close();
            }
        }
    }

    /** A sink appending "index timestamp" per record to one file per subtask, flushed per line. */
    static final class LogSink implements Sink<Long> {
        private static final long serialVersionUID = 1L;
        private final String prefix;

        LogSink(String prefix) {
            this.prefix = prefix;
        }

        @Override
        public SinkWriter<Long> createWriter(WriterInitContext context) throws IOException {
            BufferedWriter out = Files.newBufferedWriter(
                    Path.of(prefix + "-" + context.getTaskInfo().getIndexOfThisSubtask() + ".txt"),
                    StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
            return new SinkWriter<>() {
                @Override
                public void write(Long value, Context ctx) throws IOException {
                    out.write(value + " " + ctx.timestamp() + "\n");
                    out.flush();
                }

                @Override
                public void flush(boolean endOfInput) throws IOException {
                    out.flush();
                }

                @Override
                public void close() throws IOException {
                    out.close();
                }
            };
        }
    }

    /** The job of one phase; the same operators (uids) in both. */
    static StreamExecutionEnvironment job(
            int phase, String endpoint, String pipeline, Path work, String savepoint, boolean inSink) {
        Configuration conf = new Configuration();
        conf.setString("restart-strategy.type", "none");
        conf.setString("pipeline.auto-watermark-interval", "10 ms");
        if (savepoint != null) {
            conf.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        int limit = phase == 1 ? HELD : LIMIT;
        WatermarkStrategy<Long> watermarks = phase == 1
                ? WatermarkStrategy.<Long>forGenerator(context -> new StuckAtZero())
                : WatermarkStrategy.<Long>forMonotonousTimestamps();
        DataStream<Long> timed = env.fromSequence(0, Long.MAX_VALUE / 2)
                .uid("numbers")
                .setParallelism(1)
                .map(new Start(work.resolve("go").toString()))
                .uid("start")
                .setParallelism(1)
                .filter(i -> i < limit)
                .uid("limit")
                .setParallelism(1)
                .assignTimestampsAndWatermarks(watermarks.withTimestampAssigner((i, previous) -> BASE + i))
                .uid("timestamps")
                .setParallelism(1)
                .startNewChain()
                .rebalance();
        GateConfig gate = GateConfig.fromJobConfiguration()
                .coordinator(endpoint)
                .pipeline(pipeline)
                .colour("BLUE");
        if (inSink) {
            timed.sinkTo(GatedSink.wrap(new LogSink(work.resolve("out-" + phase).toString()), gate))
                    .uid("gated-log")
                    .setParallelism(phase == 1 ? 2 : 3);
            return env;
        }
        GateOperator.before(timed, gate)
                .setParallelism(phase == 1 ? 2 : 3)
                .process(new Log(work.resolve("out-" + phase).toString()))
                .uid("log")
                .setParallelism(phase == 1 ? 2 : 3)
                .sinkTo(new DiscardingSink<>())
                .uid("discard")
                .setParallelism(1);
        return env;
    }

    /** The BLUE gates' held count and the horizon from `cutover status --json`, or null. */
    static long[] status(String cutover, String endpoint, String pipeline) throws Exception {
        Process p = new ProcessBuilder(cutover, "status", pipeline, "--endpoint", endpoint, "--json")
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            return null;
        }
        Matcher held = Pattern.compile("\"blue\":\\{[^}]*\"held\":(\\d+)").matcher(out);
        Matcher horizon = Pattern.compile("\"horizon\":(-?\\d+)").matcher(out);
        if (!held.find() || !horizon.find()) {
            throw new IllegalStateException("unexpected status: " + out);
        }
        return new long[] {Long.parseLong(held.group(1)), Long.parseLong(horizon.group(1))};
    }

    interface Check {
        boolean done(long held, long horizon);
    }

    static void await(String what, String cutover, String endpoint, String pipeline, Check check)
            throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        long[] last = null;
        while (System.nanoTime() < deadline) {
            last = status(cutover, endpoint, pipeline);
            if (last != null && check.done(last[0], last[1])) {
                return;
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("timed out waiting for " + what + "; last status (held, horizon): "
                + (last == null ? "none" : last[0] + ", " + last[1]));
    }

    /** index → timestamps seen, over every file of a phase. */
    static Map<Long, List<Long>> read(Path work, int phase) throws IOException {
        Map<Long, List<Long>> seen = new HashMap<>();
        try (var files = Files.list(work)) {
            for (Path file : files.filter(f -> f.getFileName().toString().startsWith("out-" + phase + "-"))
                    .toList()) {
                for (String line : Files.readAllLines(file)) {
                    String[] parts = line.trim().split(" ");
                    seen.computeIfAbsent(Long.parseLong(parts[0]), k -> new ArrayList<>())
                            .add(parts[1].equals("null") ? Long.MIN_VALUE : Long.parseLong(parts[1]));
                }
            }
        }
        return seen;
    }

    public static void main(String[] args) throws Exception {
        String endpoint = args[0];
        String pipeline = args[1];
        Path work = Path.of(args[2]);
        String cutover = args[3];
        boolean inSink = args.length > 4 && args[4].equals("sink");
        Files.createDirectories(work);

        // Phase one: the horizon first stands one window past watermark 0, then records flow.
        JobClient first = job(1, endpoint, pipeline, work, null, inSink).executeAsync("held, parallelism 2");
        await("the first horizon", cutover, endpoint, pipeline, (held, horizon) -> horizon >= 0);
        Files.createFile(work.resolve("go"));
        await(HELD + " held records", cutover, endpoint, pipeline, (held, horizon) -> held == HELD);
        String savepoint = first.stopWithSavepoint(false, work.resolve("savepoints").toUri().toString(),
                        SavepointFormatType.CANONICAL)
                .get();
        int emittedBefore = read(work, 1).size();

        // Phase two: restored at parallelism 3; watermarks follow the records and free the held ones.
        JobClient second = job(2, endpoint, pipeline, work, savepoint, inSink).executeAsync("restored, parallelism 3");
        long deadline = System.nanoTime() + WAIT.toNanos();
        Map<Long, List<Long>> seen = read(work, 2);
        while (!(seen.keySet().containsAll(range(0, HELD)) && seen.containsKey((long) LIMIT - 1))) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("restored job emitted only " + seen.size() + " records");
            }
            Thread.sleep(100);
            seen = read(work, 2);
        }
        await("no held records", cutover, endpoint, pipeline, (held, horizon) -> held == 0);
        second.cancel().get();
        seen = read(work, 2);

        int duplicates = 0;
        int wrongTimestamps = 0;
        TreeSet<Long> later = new TreeSet<>();
        for (var entry : seen.entrySet()) {
            duplicates += entry.getValue().size() - 1;
            for (long ts : entry.getValue()) {
                if (ts != BASE + entry.getKey()) {
                    wrongTimestamps++;
                }
            }
            if (entry.getKey() >= HELD) {
                later.add(entry.getKey());
            }
        }
        int released = (int) range(0, HELD).stream().filter(seen::containsKey).count();
        // The records after the savepoint form one run up to the limit (the first restored one
        // may be later than HELD: phase one's filter consumed some before the savepoint).
        boolean laterContiguous = !later.isEmpty() && later.last() - later.first() + 1 == later.size();
        System.out.printf(
                "{\"emitted_before_savepoint\": %d, \"released_after_restore\": %d, \"later_records\": %d,"
                        + " \"later_contiguous\": %b, \"duplicates\": %d, \"wrong_timestamps\": %d}%n",
                emittedBefore, released, later.size(), laterContiguous, duplicates, wrongTimestamps);
        if (emittedBefore != 0 || released != HELD || !laterContiguous || duplicates != 0 || wrongTimestamps != 0) {
            System.exit(1);
        }
    }

    static List<Long> range(long from, long to) {
        List<Long> out = new ArrayList<>();
        for (long i = from; i < to; i++) {
            out.add(i);
        }
        return out;
    }
}
