"""What a gate tells a Flink user who got something wrong, in real PyFlink
jobs (local execution):

1. an endpoint without a scheme (``127.0.0.1:7700``) is refused when the gate
   is built, with the fix in the message;
2. a job whose coordinator cannot be reached logs (in Flink's log) that its
   records are held and that the gate never connected, and fails at the end
   of its input with a ``GateOverflow`` saying the same, endpoint and last
   error included;
3. a gate's figures are Flink metrics (group ``cutover``), read here through
   Flink's Prometheus reporter while the job runs.

    python diagnostics.py --cutover target/release/cutover --work /tmp/x

Prints one JSON object as its last line.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def log(message):
    print(f"[diagnostics {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scheme_less_endpoint():
    from cutover_gate.flink import CutoverGate
    try:
        CutoverGate("diag", "GREEN", "127.0.0.1:7700")
    except ValueError as refused:
        return str(refused)
    return None


def run_job(work, name, endpoint, extra, env_extra=None, timeout=240):
    """Runs diagnostics_job.py in its own process and Flink log folder;
    returns (exit code, its output, Flink's log text)."""
    log_dir = work / f"{name}-log"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FLINK_LOG_DIR=str(log_dir), **(env_extra or {}))
    args = [sys.executable, str(HERE / "diagnostics_job.py"), "--endpoint", endpoint, *extra]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    flink_log = "\n".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("*.log")))
    return done.returncode, done.stdout + done.stderr, flink_log


def unreachable(work):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    code, output, flink_log = run_job(
        work, "unreachable", endpoint,
        ["--records", "40", "--rate", "20", "--hold-warning-s", "0.5",
         "--end-of-input-timeout-s", "2"])
    overflow = re.search(r"GateOverflow: ([^\n]*)", output)
    warnings = [line for line in flink_log.splitlines()
                if "records held" in line and "never connected" in line]
    return {
        "endpoint": endpoint,
        "job_failed": code != 0,
        "overflow": overflow.group(1) if overflow else None,
        "warning": warnings[0] if warnings else None,
        "warnings": len(warnings),
    }


def prometheus_reporter_jar():
    """Flink's Prometheus reporter from PyFlink's plugins folder: local
    execution loads no plugins, so it goes on the classpath (PyFlink's
    launcher adds HADOOP_CLASSPATH to it)."""
    import pyflink
    folder = Path(pyflink.__file__).parent / "plugins" / "metrics-prometheus"
    jars = sorted(folder.glob("flink-metrics-prometheus-*.jar"))
    if not jars:
        raise RuntimeError(f"no Prometheus reporter in {folder}")
    return str(jars[0])


def metrics(work, cutover):
    grpc_port = free_port()
    serve = subprocess.Popen(
        [cutover, "serve", "--listen", f"127.0.0.1:{grpc_port}", "--store", "memory",
         "--metrics-listen", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        prom_port = free_port()
        job = subprocess.Popen(
            [sys.executable, str(HERE / "diagnostics_job.py"),
             "--endpoint", f"http://127.0.0.1:{grpc_port}", "--records", "600", "--rate", "60",
             "--prometheus-port", str(prom_port)],
            env=dict(os.environ, FLINK_LOG_DIR=str(work / "metrics-log"),
                     HADOOP_CLASSPATH=prometheus_reporter_jar()),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        found = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and job.poll() is None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics",
                                              timeout=2).read().decode()
            except OSError:
                time.sleep(0.2)
                continue
            for line in text.splitlines():
                match = re.match(r"(flink_\w*cutover_(\w+))\{[^}]*\} (\S+)", line)
                if match:
                    found[match.group(2)] = float(match.group(3))
            if found.get("emitted", 0) > 0 and found.get("connected") == 1 and \
                    found.get("epoch", -1) >= 0:
                break
            time.sleep(0.2)
        output = ""
        if job.poll() is None:
            job.kill()
        output = job.communicate()[0]
        if not found:
            log(f"no cutover metrics; the job said:\n{output[-3000:]}")
        return found
    finally:
        serve.kill()
        serve.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cutover", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log("an endpoint without a scheme")
    refused = scheme_less_endpoint()
    log("a coordinator that cannot be reached")
    stuck = unreachable(work)
    log("Flink metrics of a gate that runs")
    figures = metrics(work, args.cutover)
    print(json.dumps({"scheme_less": refused, "unreachable": stuck, "metrics": figures}))


if __name__ == "__main__":
    main()
