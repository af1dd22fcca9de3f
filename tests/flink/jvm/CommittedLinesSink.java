package dev.cutover.e2e;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.UUID;
import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.api.connector.sink2.CommitterInitContext;
import org.apache.flink.api.connector.sink2.CommittingSinkWriter;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.SupportsCommitter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * A two-phase sink for the end-to-end test through {@code GatedSink}: each writer writes lines to
 * a hidden pending file, hands the file over at each checkpoint (and at the end of input), and
 * the committer renames it visible once Flink commits it. What the test counts is what was
 * committed, as with a transactional sink.
 */
final class CommittedLinesSink implements Sink<String>, SupportsCommitter<String> {
    private static final long serialVersionUID = 1L;
    private final String folder;

    CommittedLinesSink(String folder) {
        this.folder = folder;
    }

    @Override
    public SinkWriter<String> createWriter(WriterInitContext context) throws IOException {
        Files.createDirectories(Path.of(folder));
        return new Writer(Path.of(folder));
    }

    @Override
    public Committer<String> createCommitter(CommitterInitContext context) {
        return new Committer<>() {
            @Override
            public void commit(Collection<CommitRequest<String>> requests) throws IOException {
                for (CommitRequest<String> request : requests) {
                    Path pending = Path.of(request.getCommittable());
                    if (Files.exists(pending)) {
                        Files.move(pending, pending.resolveSibling(pending.getFileName().toString().substring(1)),
                                StandardCopyOption.ATOMIC_MOVE);
                    } else {
                        request.signalAlreadyCommitted();
                    }
                }
            }

            @Override
            public void close() {}
        };
    }

    @Override
    public SimpleVersionedSerializer<String> getCommittableSerializer() {
        return new SimpleVersionedSerializer<>() {
            @Override
            public int getVersion() {
                return 1;
            }

            @Override
            public byte[] serialize(String path) {
                return path.getBytes(StandardCharsets.UTF_8);
            }

            @Override
            public String deserialize(int version, byte[] bytes) {
                return new String(bytes, StandardCharsets.UTF_8);
            }
        };
    }

    @SuppressWarnings("try")
    private static final class Writer implements CommittingSinkWriter<String, String> {
        private final Path folder;
        private Path pending;
        private BufferedWriter out;

        Writer(Path folder) {
            this.folder = folder;
        }

        @Override
        public void write(String line, Context context) throws IOException {
            if (out == null) {
                pending = folder.resolve(".part-" + UUID.randomUUID());
                out = Files.newBufferedWriter(pending);
            }
            out.write(line);
            out.write('\n');
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            if (out != null) {
                out.flush();
            }
        }

        @Override
        public Collection<String> prepareCommit() throws IOException {
            List<String> done = new ArrayList<>();
            if (out != null) {
                out.close();
                done.add(pending.toString());
                out = null;
            }
            return done;
        }

        @Override
        public void close() throws IOException {
            if (out != null) {
                out.close();
            }
        }
    }
}
