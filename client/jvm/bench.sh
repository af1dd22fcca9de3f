#!/usr/bin/env bash
# What the JVM gate costs (BENCHMARKS.md): nanoseconds per Gate.decide call,
# and the minimal Flink job's throughput without a gate, with an identity
# map, with GateOperator and with GatedSink, object reuse off and on. Prints
# one JSON line. `--quick` runs a small size (CI checks that it still works).
# `--profile SHAPE REUSE` runs one shape (NONE, IDENTITY, OPERATOR, SINK;
# object reuse true or false) under Java Flight Recorder and prints where
# its samples fall.
#
#   client/jvm/bench.sh [--quick | --profile SHAPE REUSE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/cutover-jvm-bench.XXXXXX")"
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "[bench.sh $(date +%H:%M:%S)] $*" >&2; }

calls=50000000
records=50000000
if [ "${1:-}" = "--quick" ]; then
  calls=2000000
  records=200000
fi
if [ "${1:-}" = "--profile" ] && [ -z "${3:-}" ]; then
  echo "usage: client/jvm/bench.sh --profile NONE|IDENTITY|OPERATOR|SINK true|false" >&2
  exit 2
fi

jar="$("$here/build.sh" "$work/gate" | tail -n 1)"
dists=("$root"/tests/flink/.venv/lib/python3*/site-packages/pyflink/lib/flink-dist-*.jar)
flink_lib="$(dirname "${dists[0]}")"
(cd "$root" && cargo build --release -q -p cutover-cli >&2)
mkdir -p "$work/classes"
javac --release 17 -Xlint:all,-serial,-processing -Werror -cp "$flink_lib/*:$jar" \
  -d "$work/classes" "$here"/bench/*.java >&2

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# A window far wider than the benchmark's event time: every record is
# decidable at once, so what is measured is the decision, not the horizon.
"$root/target/release/cutover" serve --listen "127.0.0.1:$port" --metrics-listen off \
  --store memory --horizon-window 1000000s >"$work/serve.log" 2>&1 &
serve_pid=$!
if [ "${1:-}" = "--profile" ]; then
  log "$2 with object reuse $3 under Java Flight Recorder ($records records, six runs)"
  java -Xms3g -Xmx3g -XX:+AlwaysPreTouch \
    -XX:StartFlightRecording=filename="$work/profile.jfr",settings=profile \
    -cp "$work/classes:$jar:$flink_lib/*" dev.cutover.bench.GateBench --job \
    "http://127.0.0.1:$port" "$records" "$2" "$3" 2>"$work/bench.log" | tail -n 1 |
    sed 's/^/records per second: /'
  jfr print --events jdk.ExecutionSample "$work/profile.jfr" | python3 "$here/bench/profile_summary.py"
  exit 0
fi
log "decide loop ($calls calls) and the minimal Flink job ($records records): no gate, identity map, GateOperator, GatedSink; object reuse off and on"
java -cp "$work/classes:$jar:$flink_lib/*" dev.cutover.bench.GateBench \
  "http://127.0.0.1:$port" "$calls" "$records" 2>"$work/bench.log" | tail -n 1
