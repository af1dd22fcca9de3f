#!/usr/bin/env bash
# End-to-end cutover between two real PyFlink jobs (see e2e.py).
#
# Creates or reuses a virtualenv in tests/flink/.venv, installs PyFlink and
# the cutover gate (the Rust client as a Python module, built with maturin),
# builds the cutover binary, runs both decision modes and prints one JSON
# object as the last line. Exits non-zero on any duplicate or gap in
# EVENT_TIME mode. Extra arguments go to e2e.py (e.g. --records 50000);
# `--setup-only` stops after the set-up (CI runs it before the tests);
# `--diagnostics` runs diagnostics.py instead (what a gate reports when the
# endpoint is wrong or the coordinator unreachable, and its Flink metrics).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
work="$(mktemp -d "${TMPDIR:-/tmp}/cutover-flink.XXXXXX")"

cleanup() {
  # e2e.py kills its own children; this catches anything left if it died.
  pkill -KILL -f "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
log "installing PyFlink, grpcio-tools and maturin"
"$venv/bin/pip" install -q --disable-pip-version-check \
  "apache-flink==2.3.0" "grpcio-tools==1.65.5" "maturin>=1.7,<2" >&2

log "building the cutover binary and the gate wheel"
(cd "$root" && cargo build --release -q -p cutover-cli >&2)
rm -rf "$work/wheels"
(cd "$root" && PATH="$venv/bin:$PATH" maturin build --release -q \
  -m client/python/Cargo.toml -o "$work/wheels" >&2)
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps \
  "$work"/wheels/cutover_gate-*.whl >&2

if [ "${1:-}" = "--setup-only" ]; then
  log "set-up done"
  exit 0
fi
if [ "${1:-}" = "--diagnostics" ]; then
  log "what a gate tells about a wrong endpoint, an unreachable coordinator, its metrics"
  "$venv/bin/python" "$here/diagnostics.py" --cutover "$root/target/release/cutover" \
    --work "$work/diagnostics"
  exit 0
fi

log "running both jobs, both modes"
"$venv/bin/python" "$here/e2e.py" --cutover "$root/target/release/cutover" \
  --work "$work/run" "$@"
