package dev.cutover.gate;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Loads the native gate library packed in this jar. A shared library can be loaded by one
 * classloader only, and every job on a Flink session cluster has its own classloader: each
 * load therefore copies the library to a fresh temporary file first. {@code
 * -Dcutover.native.library=/path/libcutover_jvm.so} loads a given file instead (still copied).
 */
public final class NativeLoader {
    /** Where the library sits inside the jar. */
    static final String RESOURCE = "/dev/cutover/gate/native/libcutover_jvm.so";

    private static Path loaded;

    private NativeLoader() {}

    /** Loads the library into this classloader (once); returns the file it was loaded from. */
    public static synchronized Path load() {
        if (loaded != null) {
            return loaded;
        }
        try {
            Path copy = Files.createTempFile("cutover_jvm-", ".so");
            copy.toFile().deleteOnExit();
            String override = System.getProperty("cutover.native.library");
            if (override != null) {
                Files.copy(Path.of(override), copy, StandardCopyOption.REPLACE_EXISTING);
            } else {
                try (InputStream in = NativeLoader.class.getResourceAsStream(RESOURCE)) {
                    if (in == null) {
                        throw new UnsatisfiedLinkError(
                                "cutover gate: " + RESOURCE + " is not in the jar (build it with client/jvm/build.sh)");
                    }
                    Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
                }
            }
            System.load(copy.toAbsolutePath().toString());
            loaded = copy;
            return copy;
        } catch (IOException e) {
            throw new UnsatisfiedLinkError("cutover gate: cannot extract the native library: " + e);
        }
    }
}
