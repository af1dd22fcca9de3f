package dev.cutover.gate;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.connector.sink2.Committer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The committer of a {@link GatedSink}: commits the wrapped sink's committables through the
 * wrapped sink's committer, and hands each gate marker of a completed checkpoint to the writer
 * that took it (see {@link GatedSinkWriter#markerCommitted}). Markers of writers that are gone
 * (restored from an older run of the job) are dropped: a restored writer starts from the floor in
 * its own state.
 */
// close() passes on what the wrapped object's close() throws.
@SuppressWarnings("try")
final class GatedCommitter implements Committer<GateCommittable> {
    private static final Logger LOG = LoggerFactory.getLogger(GatedCommitter.class);
    private final Committer<Object> inner;
    /** The job this committer commits for: markers of another job's writers are not delivered. */
    private final String jobId;
    private boolean warned;

    /** {@code inner}: the wrapped sink's committer (null: it commits nothing); {@code jobId}: the job's. */
    GatedCommitter(Committer<Object> inner, String jobId) {
        this.inner = inner;
        this.jobId = jobId;
    }

    @Override
    public void commit(Collection<CommitRequest<GateCommittable>> requests) throws IOException, InterruptedException {
        List<CommitRequest<Object>> wrapped = new ArrayList<>(requests.size());
        Map<String, GateCommittable> latest = new HashMap<>();
        for (CommitRequest<GateCommittable> request : requests) {
            GateCommittable committable = request.getCommittable();
            if (committable.isMarker()) {
                latest.merge(committable.writer, committable, (a, b) -> a.sequence >= b.sequence ? a : b);
            } else {
                wrapped.add(new Wrapped(request));
            }
        }
        if (!wrapped.isEmpty()) {
            if (inner == null) {
                throw new IOException("cutover GatedSink: committables for a wrapped sink that has no committer");
            }
            inner.commit(wrapped);
        }
        for (GateCommittable marker : latest.values()) {
            boolean delivered = GatedSinkWriter.ofJob(marker.writer, jobId) && GatedSinkWriter.markerCommitted(marker);
            if (!delivered && !warned) {
                warned = true;
                LOG.info("cutover GatedSink: a committed checkpoint marker names no writer of this job open in"
                        + " this JVM: restored from an earlier run or another job's savepoint (expected once after"
                        + " a restore), or the sink's committer runs apart from its writer (keep it chained: a gate"
                        + " whose markers never come back reports no completed checkpoint, and its colour never"
                        + " drains)");
            }
        }
    }

    @Override
    public void close() throws Exception {
        if (inner != null) {
            inner.close();
        }
    }

    /** A request of the wrapped sink's committable, answered on the request it came in. */
    private static final class Wrapped implements CommitRequest<Object> {
        private final CommitRequest<GateCommittable> outer;

        Wrapped(CommitRequest<GateCommittable> outer) {
            this.outer = outer;
        }

        @Override
        public Object getCommittable() {
            return outer.getCommittable().inner;
        }

        @Override
        public int getNumberOfRetries() {
            return outer.getNumberOfRetries();
        }

        @Override
        public void signalFailedWithKnownReason(Throwable t) {
            outer.signalFailedWithKnownReason(t);
        }

        @Override
        public void signalFailedWithUnknownReason(Throwable t) {
            outer.signalFailedWithUnknownReason(t);
        }

        @Override
        public void retryLater() {
            outer.retryLater();
        }

        @Override
        public void updateAndRetryLater(Object committable) {
            outer.updateAndRetryLater(GateCommittable.of(committable));
        }

        @Override
        public void signalAlreadyCommitted() {
            outer.signalAlreadyCommitted();
        }
    }
}
