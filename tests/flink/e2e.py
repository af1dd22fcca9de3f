"""End-to-end cutover between two real Flink jobs (PyFlink, or Java with
--java-classpath).

Every connection is mutual TLS (a throw-away CA from `cutover dev-pki`: the
coordinator serves with --tls-cert/--tls-key/--tls-client-ca, the jobs'
gates are given the files as options — Flink configuration keys
cutover.tls.* in Java, gate() arguments in Python —, this script's control
channel presents the same client certificate); --plaintext turns it off.

For each decision mode: start `cutover serve` on a file store, run GREEN
(parallelism 2) on a shared bounded input of out-of-order records, start BLUE
(parallelism 3) on the same input while GREEN runs, schedule a cutover to BLUE
at EARLIEST, wait for DRAINED, let both jobs finish, and count how often each
input record appears in the union of both jobs' file sinks.

Prints one JSON object as the last line of stdout:
{"event_time": {"records": N, "duplicates": D, "gaps": G}, "watermark": {...}}
and exits non-zero if EVENT_TIME mode shows any duplicate or gap.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PIPELINE_WAIT_S = 180


def log(message):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def generate_stubs(out):
    """Python stubs of the control API, generated from proto/."""
    out.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    status = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}",
                          f"--grpc_python_out={out}", *protos])
    if status != 0:
        raise RuntimeError(f"grpc_tools.protoc failed ({status})")
    sys.path.insert(0, str(out))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_records(path, count, seed, out_of_orderness_ms):
    """Record i at 10 ms steps of event time, up to `out_of_orderness_ms`
    early, so timestamps arrive out of order within the watermark bound."""
    rng = random.Random(seed)
    base = 1_700_000_000_000
    with open(path, "w") as f:
        for i in range(count):
            f.write(f"{i} {base + i * 10 - rng.randint(0, out_of_orderness_ms - 1)}\n")


class Processes:
    """Child processes, killed (whole process groups) on exit."""

    def __init__(self):
        self.children = []

    def start(self, args, log_path, env=None):
        out = open(log_path, "w")
        child = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        self.children.append(child)
        return child

    def stop_all(self):
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


class Transport:
    """Mutual TLS with the files `cutover dev-pki` wrote to work/pki, or
    plaintext with --plaintext."""

    def __init__(self, args, work):
        self.pki = None if args.plaintext else work / "pki"

    def name(self):
        return "plaintext" if self.pki is None else "mutual TLS"

    def endpoint(self, port):
        scheme = "http" if self.pki is None else "https"
        return f"{scheme}://127.0.0.1:{port}"

    def serve_flags(self):
        if self.pki is None:
            return []
        return ["--tls-cert", str(self.pki / "server.pem"), "--tls-key", str(self.pki / "server-key.pem"),
                "--tls-client-ca", str(self.pki / "ca.pem")]

    def channel(self, port):
        if self.pki is None:
            return grpc.insecure_channel(f"127.0.0.1:{port}")
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(self.pki / "ca.pem").read_bytes(),
            private_key=(self.pki / "client-key.pem").read_bytes(),
            certificate_chain=(self.pki / "client.pem").read_bytes())
        return grpc.secure_channel(f"127.0.0.1:{port}", credentials)

    def job_flags(self):
        """The jobs take the files as options of their gate (Flink
        configuration keys in Java, `gate()` arguments in Python)."""
        return [] if self.pki is None else ["--tls-dir", str(self.pki)]


def wait_for_pipeline(control, v1, name, deadline):
    """Polls until the first gate created the pipeline (no stream exists
    before that)."""
    while time.monotonic() < deadline:
        try:
            return control.GetPipeline(v1.GetPipelineRequest(pipeline=name), timeout=5)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
        time.sleep(0.2)
    raise TimeoutError(f"pipeline {name} never appeared")


def watch_until(control, v1, name, predicate, what, deadline, jobs=()):
    """Follows WatchPipeline until `predicate(status)` holds."""
    stream = control.WatchPipeline(v1.WatchPipelineRequest(pipeline=name),
                                   timeout=max(1.0, deadline - time.monotonic()))
    try:
        for status in stream:
            if predicate(status):
                return status
            for job in jobs:
                if job.poll() not in (None, 0):
                    raise RuntimeError(f"a job failed (exit {job.returncode}) while waiting for {what}")
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise TimeoutError(f"timed out waiting for {what}") from e
        raise
    finally:
        stream.cancel()
    raise RuntimeError(f"watch ended before {what}")


def read_ids(folder):
    ids = Counter()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            for line in path.read_text().split():
                ids[int(line)] += 1
    return ids


def run_mode(args, mode, work, processes):
    import cutover.v1.control_pb2 as control_pb2
    import cutover.v1.control_pb2_grpc as control_grpc
    import cutover.v1.types_pb2 as types_pb2

    class V1:
        pass

    v1 = V1()
    for module in (control_pb2, types_pb2):
        for key in dir(module):
            setattr(v1, key, getattr(module, key))

    name = f"e2e-{mode.lower().replace('_', '-')}"
    last_timestamp = max(int(line.split()[1]) for line in open(work / "records.txt"))
    mode_dir = work / name
    mode_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    transport = Transport(args, work)
    endpoint = transport.endpoint(port)
    serve = processes.start(
        [args.cutover, "serve", "--listen", f"127.0.0.1:{port}", "--metrics-listen", "off",
         "--store", f"file:{mode_dir / 'state'}", "--horizon-window", args.horizon_window,
         *transport.serve_flags()],
        mode_dir / "serve.log")
    channel = transport.channel(port)
    grpc.channel_ready_future(channel).result(timeout=30)
    control = control_grpc.ControlServiceStub(channel)
    log(f"{mode}: coordinator at {endpoint}")

    def job(colour, parallelism, rate):
        if args.java_classpath:
            runner = ["java", "-cp", args.java_classpath, "dev.cutover.e2e.BlueGreenJob",
                      "--gate", args.java_gate]
        else:
            runner = [sys.executable, str(HERE / "job.py")]
        command = [*runner, "--colour", colour,
                   "--parallelism", str(parallelism), "--endpoint", endpoint,
                   "--pipeline", name, "--input", str(work / "records.txt"),
                   "--output", str(mode_dir / colour.lower()), "--rate", str(rate),
                   "--bundle-size", str(args.bundle_size),
                   "--out-of-orderness-ms", str(args.out_of_orderness_ms),
                   *transport.job_flags()]
        return processes.start(command, mode_dir / f"{colour.lower()}.log")

    deadline = time.monotonic() + PIPELINE_WAIT_S
    green = job("GREEN", args.green_parallelism, args.rate)
    wait_for_pipeline(control, v1, name, deadline)
    watch_until(control, v1, name,
                lambda s: s.green.connected == args.green_parallelism and s.plan.horizon > -(1 << 63),
                "GREEN's gates and a first horizon", deadline, [green])
    log(f"{mode}: GREEN runs; starting BLUE")
    blue = job("BLUE", args.blue_parallelism, args.blue_rate)
    ready = watch_until(control, v1, name, lambda s: s.blue.connected == args.blue_parallelism,
                        "BLUE's gates", deadline, [green, blue])
    # The cutover must fall inside GREEN's remaining input, or GREEN never
    # reaches it and the test proves nothing.
    if green.poll() is not None or ready.green.highest_watermark > last_timestamp - 10_000:
        raise RuntimeError("GREEN was (nearly) through its input before BLUE was up: lower --rate")
    scheduled = control.ScheduleTransition(v1.ScheduleTransitionRequest(
        pipeline=name, target=v1.BLUE, earliest=True, mode=getattr(v1, mode),
        allowed_lateness=0, auto_promote=True), timeout=10)
    at = scheduled.transition.at
    log(f"{mode}: cutover to BLUE scheduled at {at} (epoch {scheduled.plan.epoch})")
    drained = watch_until(control, v1, name, lambda s: s.phase == v1.DRAINED, "DRAINED",
                          time.monotonic() + PIPELINE_WAIT_S, [green, blue])
    # How far GREEN's connected gates were durably (through completed
    # checkpoints) when it counted as drained; None if none reports them.
    green_checkpointed = (drained.green.lowest_checkpointed_watermark
                          if drained.green.HasField("lowest_checkpointed_watermark") else None)
    log(f"{mode}: DRAINED; waiting for both jobs to finish")
    for colour, child in (("GREEN", green), ("BLUE", blue)):
        if child.wait(timeout=PIPELINE_WAIT_S) != 0:
            raise RuntimeError(f"{colour} job failed: see {mode_dir / (colour.lower() + '.log')}")
    completed = control.CompleteTransition(v1.CompleteTransitionRequest(pipeline=name), timeout=10)
    channel.close()
    serve.send_signal(signal.SIGTERM)
    serve.wait(timeout=30)

    green_ids, blue_ids = read_ids(mode_dir / "green"), read_ids(mode_dir / "blue")
    union = green_ids + blue_ids
    duplicates = sum(c - 1 for c in union.values() if c > 1)
    gaps = sum(1 for i in range(args.records) if union[i] == 0)
    result = {"records": args.records, "duplicates": duplicates, "gaps": gaps,
              "emitted_green": sum(green_ids.values()), "emitted_blue": sum(blue_ids.values()),
              "cutover_key": at, "final_epoch": completed.plan.epoch,
              "green_checkpointed_at_drained": green_checkpointed,
              "transport": transport.name()}
    log(f"{mode}: {json.dumps(result)}")
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cutover", required=True, help="the cutover binary")
    parser.add_argument("--work", required=True, help="scratch folder")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rate", type=float, default=250.0, help="GREEN's records per second")
    parser.add_argument("--blue-rate", type=float, default=600.0, help="BLUE's records per second")
    parser.add_argument("--bundle-size", type=int, default=10)
    parser.add_argument("--out-of-orderness-ms", type=int, default=300)
    parser.add_argument("--horizon-window", default="2s")
    parser.add_argument("--green-parallelism", type=int, default=2)
    parser.add_argument("--blue-parallelism", type=int, default=3)
    parser.add_argument("--modes", default="EVENT_TIME,WATERMARK")
    parser.add_argument("--plaintext", action="store_true",
                        help="no TLS (default: mutual TLS everywhere)")
    parser.add_argument("--java-classpath", default="",
                        help="run the Java job (dev.cutover.e2e.BlueGreenJob) on this classpath")
    parser.add_argument("--java-gate", choices=("operator", "sink"), default="operator",
                        help="the Java job's gate: GateOperator before the sink, or GatedSink around it")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    generate_stubs(work / "stubs")
    if not args.plaintext:
        subprocess.run([args.cutover, "dev-pki", str(work / "pki")], check=True,
                       stdout=subprocess.DEVNULL)
    write_records(work / "records.txt", args.records, args.seed, args.out_of_orderness_ms)
    processes = Processes()
    results = {}
    try:
        for mode in args.modes.split(","):
            results[mode.lower()] = run_mode(args, mode, work, processes)
    except Exception:
        for path in sorted(work.rglob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-15:]
            log(f"--- {path.relative_to(work)} (last lines)\n" + "\n".join(tail))
        raise
    finally:
        processes.stop_all()
    summary = {mode: {k: r[k] for k in ("records", "duplicates", "gaps", "transport", "cutover_key",
                                        "green_checkpointed_at_drained")}
               for mode, r in results.items()}
    print(json.dumps(summary), flush=True)
    exact = results.get("event_time")
    if exact is None or exact["duplicates"] or exact["gaps"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
