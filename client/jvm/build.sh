#!/usr/bin/env bash
# Builds the JVM gate without Maven: the Rust cdylib (cutover-jvm), the Java
# sources (package dev.cutover.gate) compiled for Java 17 against the Flink
# jars that PyPI's apache-flink package ships, and one jar with the native
# library inside. Prints the jar's path as its last line.
#
#   client/jvm/build.sh [OUT_DIR]        (default: target/jvm)
#
# FLINK_LIB points at a folder of Flink jars; by default the ones of
# tests/flink/.venv (created with apache-flink 2.3.0 if missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/jvm}"

log() { echo "[build.sh $(date +%H:%M:%S)] $*" >&2; }

flink_lib="${FLINK_LIB:-}"
if [ -z "$flink_lib" ]; then
  venv="$root/tests/flink/.venv"
  if ! ls "$venv"/lib/python3*/site-packages/pyflink/lib/flink-dist-*.jar >/dev/null 2>&1; then
    log "installing apache-flink 2.3.0 into $venv (for its jars)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "apache-flink==2.3.0" >&2
  fi
  dists=("$venv"/lib/python3*/site-packages/pyflink/lib/flink-dist-*.jar)
  flink_lib="$(dirname "${dists[0]}")"
fi

log "building the native library"
(cd "$root" && cargo build --release -q -p cutover-jvm >&2)

log "compiling the Java sources against $flink_lib"
rm -rf "$out/classes"
mkdir -p "$out/classes/dev/cutover/gate/native"
mapfile -t sources < <(find "$here/java" -name '*.java' | sort)
javac --release 17 -Xlint:all,-serial,-processing -Werror -cp "$flink_lib/*" \
  -d "$out/classes" "${sources[@]}" >&2
cp "$root/target/release/libcutover_jvm.so" "$out/classes/dev/cutover/gate/native/"
rm -f "$out/cutover-gate.jar"
jar --create --file "$out/cutover-gate.jar" -C "$out/classes" . >&2
log "built"
echo "$out/cutover-gate.jar"
