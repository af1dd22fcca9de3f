#!/usr/bin/env bash
# End-to-end cutover between two real Java Flink jobs with the JVM gate (the
# Rust client through JNI), and the two-classloader check.
#
#   tests/flink/run-jvm.sh [e2e.py flags]   GREEN and BLUE as Java jobs (local
#       execution, parallelism 2 and 3) on 100,000 out-of-order records, the
#       gate before a file sink, a cutover at EARLIEST while both run, both
#       modes; the last line is the JSON summary; exits non-zero on any
#       duplicate or gap in EVENT_TIME mode.
#   tests/flink/run-jvm.sh --classloaders   the gate loaded in two
#       classloaders of one JVM, each deciding through its own session (and
#       once more by the application loader, which must not clash); bad
#       input refused with Java exceptions naming the reason.
#   tests/flink/run-jvm.sh --diagnostics   an endpoint without a scheme
#       refused when the job is built; a job whose coordinator cannot be
#       reached logs its held records and fails saying it never connected;
#       a running gate's Flink metrics read through Prometheus.
#   tests/flink/run-jvm.sh --tail-agreement   decisions the Java side takes
#       from the published tail, against the Rust plan, over 20,000
#       generated plans, and read while plans change (never torn).
#   tests/flink/run-jvm.sh --rescale [operator|sink]   a Java job holding
#       1,000 records is stopped with a savepoint and restored at another
#       parallelism; every held record must come out exactly once with its
#       own timestamp. `sink`: the gate inside the sink (GatedSink).
#   tests/flink/run-jvm.sh --java-gate sink [--modes EVENT_TIME]   the
#       hand-over with the gate inside the sink (GatedSink) instead of an
#       operator before it.
#
# Builds the gate jar (client/jvm/build.sh), the cutover binary and the test
# programs; the Flink jars and grpcio-tools come from tests/flink/.venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
work="$(mktemp -d "${TMPDIR:-/tmp}/cutover-jvm.XXXXXX")"
serve_pid=""

cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  pkill -KILL -f "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

log() { echo "[run-jvm.sh $(date +%H:%M:%S)] $*" >&2; }

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import pyflink, grpc_tools' 2>/dev/null; then
  log "installing PyFlink (for its Flink jars) and grpcio-tools"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "apache-flink==2.3.0" "grpcio-tools==1.65.5" >&2
fi
dists=("$venv"/lib/python3*/site-packages/pyflink/lib/flink-dist-*.jar)
flink_lib="$(dirname "${dists[0]}")"

jar="$(FLINK_LIB="$flink_lib" "$root/client/jvm/build.sh" "$work/gate" | tail -n 1)"
log "building the cutover binary and the test programs"
(cd "$root" && cargo build --release -q -p cutover-cli >&2)
cutover="$root/target/release/cutover"
mkdir -p "$work/classes"
javac --release 17 -Xlint:all,-serial,-processing -Werror -cp "$flink_lib/*:$jar" \
  -d "$work/classes" "$here"/jvm/*.java >&2

# A coordinator on a free loopback port (memory store, 1 s horizon window)
# over mutual TLS (a throw-away CA from `cutover dev-pki`); sets $endpoint
# and the CUTOVER_TLS_* variables the gates and the CLI read. The gates
# reconnect until it listens; no wait needed.
start_coordinator() {
  local port pki="$work/pki"
  "$cutover" dev-pki "$pki" >/dev/null
  port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$cutover" serve --listen "127.0.0.1:$port" --metrics-listen off --store memory \
    --horizon-window 1s --tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem" \
    --tls-client-ca "$pki/ca.pem" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  endpoint="https://127.0.0.1:$port"
  export CUTOVER_TLS_CA="$pki/ca.pem" CUTOVER_TLS_CERT="$pki/client.pem" \
    CUTOVER_TLS_KEY="$pki/client-key.pem"
}

case "${1:-}" in
  --classloaders)
    start_coordinator
    log "two classloaders against $endpoint"
    # The jar is on the classpath too, for the bad-input checks; the two
    # classloaders load it again on their own.
    java -cp "$work/classes:$jar" dev.cutover.e2e.TwoClassloaders "$jar" "$endpoint"
    exit 0
    ;;
  --tail-agreement)
    log "the Java tail reader against the Rust plan"
    java -cp "$work/classes:$jar" dev.cutover.e2e.TailAgreement
    exit 0
    ;;
  --rescale)
    start_coordinator
    log "held records across a savepoint and a rescale, against $endpoint"
    java -cp "$work/classes:$jar:$flink_lib/*" dev.cutover.e2e.HeldAcrossRescale \
      "$endpoint" held-rescale "$work/rescale" "$cutover" "${2:-operator}"
    exit 0
    ;;
  --diagnostics)
    start_coordinator
    free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    unreachable="http://127.0.0.1:$(free_port)"
    log "a wrong endpoint, an unreachable coordinator ($unreachable), metrics against $endpoint"
    # Flink's Prometheus reporter from PyFlink's plugins folder on the
    # classpath (local execution loads no plugins); Flink's console logging
    # so that the gate's warnings land in the log read below.
    if ! java -Dlog4j.configurationFile="$flink_lib/../conf/log4j-console.properties" \
      -cp "$work/classes:$jar:$flink_lib/*:$flink_lib/../plugins/metrics-prometheus/*" \
      dev.cutover.e2e.Diagnostics "$unreachable" "$endpoint" "$(free_port)" \
      >"$work/diagnostics.log" 2>&1; then
      tail -n 60 "$work/diagnostics.log" >&2
      exit 1
    fi
    "$venv/bin/python" - "$work/diagnostics.log" <<'PY'
import json, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
result = json.loads(next(l for l in reversed(lines) if l.startswith("{")))
warnings = [l for l in lines if "records held" in l and "never connected" in l and "WARN" in l]
result["warning"] = warnings[0] if warnings else None
result["warnings"] = len(warnings)
print(json.dumps(result))
PY
    exit 0
    ;;
esac

log "running both Java jobs, both modes"
"$venv/bin/python" "$here/e2e.py" --cutover "$cutover" --work "$work/run" \
  --java-classpath "$work/classes:$jar:$flink_lib/*" \
  --records 100000 --rate 4000 --blue-rate 8000 --out-of-orderness-ms 300 "$@"
