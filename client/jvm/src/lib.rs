//! The gate client for the JVM: the Rust client (`cutover-client`) behind
//! JNI, for Java and Scala Flink jobs. The Java side (`java/`, package
//! `dev.cutover.gate`) loads this library and calls the static natives of
//! `NativeGate`; it is not a second implementation of the protocol.
//!
//! Per loaded copy of the library (one per classloader: the Java loader
//! extracts a copy per classloader) there is one small tokio runtime and
//! one coordinator session per endpoint, shared by every gate of that
//! classloader and closed with its last gate. The per-record calls
//! (`decide`, `peek`, `observeWatermark`) take and return primitives only
//! and never touch the JNI environment; everything else may throw a Java
//! exception with the reason.

mod exports;
mod jni;
mod registry;
mod test_exports;
