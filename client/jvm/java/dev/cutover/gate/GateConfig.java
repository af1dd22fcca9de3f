package dev.cutover.gate;

import java.io.Serializable;
import java.util.Map;

/**
 * Where a gate operator's gates report: coordinator, pipeline, colour, gate uid, and how many
 * records a subtask may hold. Unset values come from the job's configuration at run time: the
 * keys {@value #COORDINATOR_KEY}, {@value #PIPELINE_KEY}, {@value #COLOUR_KEY} (what the
 * FlinkBlueGreenDeployment controller injects into each colour's flinkConfiguration), looked up
 * in the global job parameters, the job configuration and the TaskManager configuration, then in
 * the environment variables {@code CUTOVER_COORDINATOR}, {@code CUTOVER_PIPELINE}, {@code
 * CUTOVER_COLOUR}. For an {@code https://} coordinator, the same holds for the TLS files and the
 * token: {@value #TLS_CA_KEY}, {@value #TLS_CERT_KEY}, {@value #TLS_KEY_KEY}, {@value
 * #TOKEN_FILE_KEY}, then {@code CUTOVER_TLS_CA}, {@code CUTOVER_TLS_CERT}, {@code CUTOVER_TLS_KEY},
 * {@code CUTOVER_TOKEN_FILE}. The first gate of a TaskManager to reach a coordinator sets them for
 * every gate of that TaskManager on that coordinator.
 */
public final class GateConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Configuration key of the coordinator address. */
    public static final String COORDINATOR_KEY = "cutover.coordinator";
    /** Configuration key of the pipeline name. */
    public static final String PIPELINE_KEY = "cutover.pipeline";
    /** Configuration key of the colour. */
    public static final String COLOUR_KEY = "cutover.colour";
    /** Configuration key of the most records a subtask may hold. */
    public static final String MAX_HELD_KEY = "cutover.max-held";
    /** Configuration key of the PEM CA file the coordinator's certificate must chain to. */
    public static final String TLS_CA_KEY = "cutover.tls.ca";
    /** Configuration key of the PEM client certificate file (mutual TLS). */
    public static final String TLS_CERT_KEY = "cutover.tls.cert";
    /** Configuration key of the PEM client key file (mutual TLS). */
    public static final String TLS_KEY_KEY = "cutover.tls.key";
    /** Configuration key of the bearer token file (a projected ServiceAccount token). */
    public static final String TOKEN_FILE_KEY = "cutover.token-file";
    /** Default of {@link #maxHeld}. */
    public static final int DEFAULT_MAX_HELD = 100_000;

    String coordinator;
    String pipeline;
    String colour;
    String gateUid = "cutover-gate";
    /** Null until set explicitly: then the job's configuration may set it. */
    Integer maxHeld;
    String tlsCa;
    String tlsCert;
    String tlsKey;
    String tokenFile;
    /** Null: the operator's defaults (30 s, 5 min). */
    java.time.Duration holdWarning;
    java.time.Duration endOfInputTimeout;

    /** Everything from the job's configuration. */
    public static GateConfig fromJobConfiguration() {
        return new GateConfig();
    }

    /**
     * The coordinator address ({@code http://host:port} or {@code https://host:port}; several
     * separated by commas).
     *
     * @throws IllegalArgumentException for an address the gate could never use (no scheme, a
     *     path, no host), naming the fix
     */
    public GateConfig coordinator(String endpoint) {
        Gate.checkEndpoint(endpoint);
        this.coordinator = endpoint;
        return this;
    }

    /** The pipeline name. */
    public GateConfig pipeline(String name) {
        this.pipeline = name;
        return this;
    }

    /** The job's colour, {@code BLUE} or {@code GREEN}. */
    public GateConfig colour(String colour) {
        this.colour = colour;
        return this;
    }

    /** The gate's uid (distinct per gate operator of one job). */
    public GateConfig gateUid(String uid) {
        this.gateUid = uid;
        return this;
    }

    /** The PEM CA file the coordinator's certificate must chain to ({@code https://}). */
    public GateConfig tlsCa(String path) {
        this.tlsCa = path;
        return this;
    }

    /** The PEM client certificate and key files, for mutual TLS. */
    public GateConfig tlsClientCertificate(String certPath, String keyPath) {
        this.tlsCert = certPath;
        this.tlsKey = keyPath;
        return this;
    }

    /** A file holding a bearer token (a projected ServiceAccount token, audience {@code cutover}). */
    public GateConfig tokenFile(String path) {
        this.tokenFile = path;
        return this;
    }

    /**
     * A subtask holding records this long logs a warning (how many, since when, what its session
     * says about the coordinator), then at most this often. Default 30 s.
     */
    public GateConfig holdWarningAfter(java.time.Duration after) {
        if (after == null || after.isNegative() || after.isZero()) {
            throw new IllegalArgumentException("cutover gate: holdWarningAfter must be positive, got " + after);
        }
        this.holdWarning = after;
        return this;
    }

    /** How long the end of input waits for the last held records to become decidable. Default 5 min. */
    public GateConfig endOfInputTimeout(java.time.Duration timeout) {
        if (timeout == null || timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("cutover gate: endOfInputTimeout must be positive, got " + timeout);
        }
        this.endOfInputTimeout = timeout;
        return this;
    }

    /** Most records one subtask may hold before the job fails with a clear error. */
    public GateConfig maxHeld(int records) {
        if (records < 1) {
            throw new IllegalArgumentException("cutover gate: maxHeld must be at least 1, got " + records);
        }
        this.maxHeld = records;
        return this;
    }

    /** Opens the gate of one subtask with this (resolved) configuration. */
    Gate openGate(String jobId, org.apache.flink.api.common.TaskInfo task) {
        return Gate.open(coordinator, pipeline, colour, jobId, gateUid, task.getIndexOfThisSubtask(),
                task.getNumberOfParallelSubtasks(), task.getAttemptNumber(), tlsCa, tlsCert, tlsKey, tokenFile);
    }

    /** A copy with unset values filled from {@code sources} (in order), then the environment. */
    @SafeVarargs
    final GateConfig resolve(Map<String, String>... sources) {
        GateConfig r = new GateConfig();
        r.coordinator = pick(coordinator, COORDINATOR_KEY, "CUTOVER_COORDINATOR", sources);
        r.pipeline = pick(pipeline, PIPELINE_KEY, "CUTOVER_PIPELINE", sources);
        r.colour = pick(colour, COLOUR_KEY, "CUTOVER_COLOUR", sources);
        r.gateUid = gateUid;
        r.maxHeld = maxHeld;
        r.holdWarning = holdWarning != null ? holdWarning : java.time.Duration.ofSeconds(30);
        r.endOfInputTimeout = endOfInputTimeout != null ? endOfInputTimeout : java.time.Duration.ofMinutes(5);
        r.tlsCa = tlsCa != null ? tlsCa : lookup(TLS_CA_KEY, "CUTOVER_TLS_CA", sources);
        r.tlsCert = tlsCert != null ? tlsCert : lookup(TLS_CERT_KEY, "CUTOVER_TLS_CERT", sources);
        r.tlsKey = tlsKey != null ? tlsKey : lookup(TLS_KEY_KEY, "CUTOVER_TLS_KEY", sources);
        r.tokenFile = tokenFile != null ? tokenFile : lookup(TOKEN_FILE_KEY, "CUTOVER_TOKEN_FILE", sources);
        String held = lookup(MAX_HELD_KEY, "CUTOVER_MAX_HELD", sources);
        if (r.maxHeld == null && held != null) {
            try {
                r.maxHeld(Integer.parseInt(held.trim()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("cutover gate: " + MAX_HELD_KEY + " is not a number: " + held);
            }
        }
        if (r.maxHeld == null) {
            r.maxHeld = DEFAULT_MAX_HELD;
        }
        return r;
    }

    @SafeVarargs
    private static String lookup(String key, String env, Map<String, String>... sources) {
        for (Map<String, String> source : sources) {
            if (source != null && source.get(key) != null) {
                return source.get(key);
            }
        }
        return System.getenv(env);
    }

    @SafeVarargs
    private static String pick(String set, String key, String env, Map<String, String>... sources) {
        if (set != null) {
            return set;
        }
        String value = lookup(key, env, sources);
        if (value == null) {
            throw new IllegalArgumentException(
                    "cutover gate: no " + key + " (set it in the job's configuration, the GateConfig, or " + env + ")");
        }
        return value;
    }
}
