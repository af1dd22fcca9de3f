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
 * native library and decides through its own coordinator session. Prints one JSON line.
 *
 * <p>Arguments: the gate jar, the coordinator address.
 */
public final class TwoClassloaders {
    private TwoClassloaders() {}

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
        boolean distinct = !libraries.get(0).equals(libraries.get(1));
        boolean emitted = decisions.stream().allMatch("EMIT"::equals);
        System.out.printf(
                "{\"classloaders\": 2, \"distinct_libraries\": %b, \"decisions\": [\"%s\", \"%s\"]}%n",
                distinct, decisions.get(0), decisions.get(1));
        if (!distinct || !emitted) {
            System.exit(1);
        }
    }
}
