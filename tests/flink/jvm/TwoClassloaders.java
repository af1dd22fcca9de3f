package dev.cutover.e2e;

import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Loads the gate jar in two classloaders of one JVM (as a Flink session cluster does for two
 * jobs), opens a gate in each, and checks both work: each classloader loaded its own copy of the
 * native library and decides through its own coordinator session. Then checks that bad input
 * becomes a Java exception with the reason. Prints one JSON line.
 *
 * <p>Arguments: the gate jar, the coordinator address.
 */
public final class TwoClassloaders {
    private TwoClassloaders() {}

    /** "ok: message" if {@code call} throws {@code type} with {@code reason} in its message. */
    private static String refusal(
            java.util.concurrent.Callable<?> call, Class<? extends RuntimeException> type, String reason) {
        try {
            call.call();
            return "not refused: expected " + type.getSimpleName() + " about " + reason;
        } catch (Exception e) {
            String message = String.valueOf(e.getMessage());
            if (type.isInstance(e) && message.contains(reason)) {
                return "ok: " + message;
            }
            return "wrong refusal: " + e;
        }
    }

    public static void main(String[] args) throws Exception {
        URL jar = Path.of(args[0]).toUri().toURL();
        String endpoint = args[1];
        List<URLClassLoader> loaders = new ArrayList<>();
        List<Object> gates = new ArrayList<>();
        List<String> libraries = new ArrayList<>();
        List<String> decisions = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            URLClassLoader loader = new URLClassLoader(new URL[] {jar}, ClassLoader.getPlatformClassLoader());
            loaders.add(loader);
            Class<?> gateClass = loader.loadClass("dev.cutover.gate.Gate");
            if (gateClass.getClassLoader() != loader) {
                throw new IllegalStateException("the gate must come from the jar's own loader");
            }
            Method open = gateClass.getMethod(
                    "open", String.class, String.class, String.class, String.class, String.class,
                    int.class, int.class, int.class);
            gates.add(open.invoke(null, endpoint, "classloaders", "BLUE", "job-" + i, "gate", i, 2, 0));
            Object library = loader.loadClass("dev.cutover.gate.NativeLoader").getMethod("load").invoke(null);
            libraries.add(library.toString());
        }
        for (Object gate : gates) {
            gate.getClass().getMethod("observeWatermark", long.class).invoke(gate, 10_000L);
        }
        for (Object gate : gates) {
            Object decision = gate.getClass()
                    .getMethod("waitUntilDecidable", long.class, Duration.class)
                    .invoke(gate, 5_000L, Duration.ofSeconds(30));
            decisions.add(decision.toString());
        }
        for (Object gate : gates) {
            gate.getClass().getMethod("close").invoke(gate);
        }
        for (URLClassLoader loader : loaders) {
            loader.close();
        }
        List<String> refusals = new ArrayList<>();
        refusals.add(refusal(() -> dev.cutover.gate.Gate.open(endpoint, "classloaders", "PURPLE", "j", "g", 0, 1, 0),
                IllegalArgumentException.class, "colour must be BLUE or GREEN"));
        refusals.add(refusal(() -> dev.cutover.gate.Gate.open(endpoint, "classloaders", "BLUE", "j", "g", 3, 2, 0),
                IllegalArgumentException.class, "subtask"));
        refusals.add(refusal(() -> dev.cutover.gate.Gate.open(endpoint, "no spaces allowed", "BLUE", "j", "g", 0, 1, 0),
                IllegalArgumentException.class, "pipeline"));
        refusals.add(refusal(() -> dev.cutover.gate.Gate.open("not a url", "classloaders", "BLUE", "j", "g", 0, 1, 0),
                IllegalArgumentException.class, "not a url"));
        refusals.add(refusal(() -> {
                    dev.cutover.gate.Gate gate =
                            dev.cutover.gate.Gate.open(endpoint, "classloaders", "GREEN", "j", "g", 0, 1, 0);
                    gate.close();
                    return gate.decide(1);
                },
                IllegalStateException.class, "closed"));
        boolean refused = refusals.stream().allMatch(r -> r.startsWith("ok"));
        boolean distinct = !libraries.get(0).equals(libraries.get(1));
        boolean emitted = decisions.stream().allMatch("EMIT"::equals);
        for (String r : refusals) {
            System.err.println("bad input: " + r);
        }
        System.out.printf(
                "{\"classloaders\": 2, \"distinct_libraries\": %b, \"decisions\": [\"%s\", \"%s\"],"
                        + " \"bad_input_refused\": %b}%n",
                distinct, decisions.get(0), decisions.get(1), refused);
        if (!distinct || !emitted || !refused) {
            System.exit(1);
        }
    }
}
