"""The cutover gate as a PyFlink operator, placed just before a sink.

Usage::

    from cutover_gate.flink import gate

    gated = gate(stream, pipeline="orders", colour="GREEN",
                 endpoint="http://cutover:7700", output_type=Types.STRING())
    gated.sink_to(file_sink)

Each record is decided on a key: its event timestamp in EVENT_TIME mode, the
subtask's current watermark in WATERMARK mode (the pipeline's plan says which).
Records the coordinator cannot decide yet (at or above the horizon, or before
the first plan) are held in keyed Flink state, so they are part of
checkpoints, and released in order of arrival once decidable; they are never
dropped. More than ``max_held`` records held by one subtask fails the job with
a clear error. At the end of input the operator waits (``end_of_input_timeout_s``)
until every held record is decided.

The job needs ``python.fn-execution.bundle.size: 1`` for per-record watermarks
to reach Python, and a short ``pipeline.auto-watermark-interval``.

What the gate is waiting for shows where Flink users look: an endpoint the
gate could never use (``cutover:7700`` without ``http://``) is refused when the
gate is built; the gate's figures are Flink metrics in the operator's group
``cutover`` (``connected`` 1/0, ``epoch`` of the plan held, -1 before the
first, ``held``, ``emitted``, ``dropped``); a subtask holding records for 30 s
logs (logger ``cutover_gate``, at most every 30 s) how many, since when, and
what its session says about the coordinator (never connected, the last
error); ``GateOverflow`` says the same.

PyFlink calls no Python code when a checkpoint completes, so this gate cannot
report its job's checkpoints to the coordinator: it is counted as drained on
its watermark, and the coordinator never retires keys it could still replay
(see the README's guarantees).
"""

import bisect
import logging
import time
import uuid
import zlib

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import ListStateDescriptor

from cutover_gate import DROP, EMIT, HOLD, check_endpoint, release_client, shared_client

END_OF_INPUT = (1 << 63) - 1
"""Flink's watermark at the end of a bounded input."""

# Identifies the jobs this process submits (see CutoverGate.job_id).
_SUBMISSION = uuid.uuid4().hex[:8]

HOLD_WARNING_S = 30.0
"""Records held this long (and then at most this often) are logged."""

_log = logging.getLogger("cutover_gate")


class GateOverflow(RuntimeError):
    """More records held than the gate's bound allows."""


class CutoverGate(KeyedProcessFunction):
    """Emits, drops or holds each record as the coordinator's plan decides."""

    def __init__(self, pipeline, colour, endpoint, gate_uid="cutover-gate", job_id=None,
                 max_held=100_000, retry_interval_ms=20, end_of_input_timeout_s=120.0,
                 tls_ca=None, tls_cert=None, tls_key=None, token_file=None,
                 hold_warning_s=HOLD_WARNING_S):
        # Refused here, where the job is built, rather than never connecting.
        check_endpoint(endpoint)
        self.pipeline = pipeline
        self.colour = colour.upper()
        self.endpoint = endpoint
        self.gate_uid = gate_uid
        # One id per submitting process, shared by every gate operator of the
        # job (built there, then shipped to the tasks): a job submitted again
        # from a new process, e.g. from a savepoint, is a new run. Pass job_id
        # to tell apart several submissions of one colour from one process.
        self.job_id = job_id or f"{pipeline}-{self.colour.lower()}-{_SUBMISSION}"
        self.max_held = max_held
        self.retry_interval_ms = retry_interval_ms
        self.end_of_input_timeout_s = end_of_input_timeout_s
        self.hold_warning_s = hold_warning_s
        # For an https:// endpoint: the CA file, the client certificate and
        # key files (mutual TLS), a token file (a projected ServiceAccount
        # token); None: CUTOVER_TLS_CA, CUTOVER_TLS_CERT, CUTOVER_TLS_KEY,
        # CUTOVER_TOKEN_FILE of the Python worker's environment.
        self.tls = {"tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key,
                    "token_file": token_file}
        self._gate = None
        self._held = None
        self._held_keys = []
        self._held_since = None
        self._last_warning = None

    def open(self, runtime_context):
        client = shared_client(self.endpoint, client_name=f"pyflink-{self.job_id}", **self.tls)
        self._gate = client.gate(
            self.pipeline, self.colour, self.job_id, self.gate_uid,
            runtime_context.get_index_of_this_subtask(),
            runtime_context.get_number_of_parallel_subtasks(),
            runtime_context.get_attempt_number())
        self._held = runtime_context.get_list_state(
            ListStateDescriptor("cutover-held", Types.PICKLED_BYTE_ARRAY()))
        self._held_keys = []
        self._keys_with_end_timer = set()
        self._held_since = None
        self._last_warning = None
        self._register_metrics(runtime_context.get_metrics_group().add_group("cutover"))

    def _register_metrics(self, group):
        gate = self._gate
        group.gauge("connected", lambda: 1 if gate.connected() else 0)
        group.gauge("epoch", lambda: -1 if gate.epoch() is None else gate.epoch())
        group.gauge("held", lambda: len(self._held_keys))
        group.gauge("emitted", gate.emitted)
        group.gauge("dropped", gate.dropped)

    def situation(self):
        """The gate, its held records and its session's connection, for messages."""
        text = f"cutover gate {self.gate_uid} ({self.pipeline}/{self.colour}): "
        text += f"{len(self._held_keys)} records held"
        if self._held_keys and self._held_since is not None:
            text += (f" (the oldest for {time.monotonic() - self._held_since:.1f} s, "
                     f"lowest key {self._held_keys[0]})")
        epoch = self._gate.epoch()
        text += f", plan epoch {-1 if epoch is None else epoch}; {self._gate.connection_report()}"
        return text

    def _warn_of_long_holds(self):
        if not self._held_keys or self._held_since is None:
            return
        now = time.monotonic()
        if now - self._held_since < self.hold_warning_s:
            return
        if self._last_warning is not None and now - self._last_warning < self.hold_warning_s:
            return
        self._last_warning = now
        _log.warning("%s (records wait until the coordinator's horizon passes their keys)",
                     self.situation())

    def close(self):
        # Not `finish()`: a job closing on failure has not finished its input.
        # The end-of-input timer below reports that; closing the client sends
        # the last progress either way.
        if self._gate is not None:
            release_client(self.endpoint)
            self._gate = None

    def _key(self, ctx, watermark):
        if self._gate.mode() == "WATERMARK":
            return watermark
        timestamp = ctx.timestamp()
        if timestamp is None:
            raise ValueError(
                "cutover gate in EVENT_TIME mode needs record timestamps: "
                "assign them with a WatermarkStrategy before the gate")
        return timestamp

    def _report_held(self):
        lowest = self._held_keys[0] if self._held_keys else None
        self._gate.set_held(len(self._held_keys), lowest)

    def _hold(self, key, value, ctx):
        if len(self._held_keys) >= self.max_held:
            raise GateOverflow(
                f"{self.situation()}: that is max_held, the bound; the coordinator at "
                f"{self.endpoint} is unreachable or the horizon does not move")
        if not self._held_keys:
            self._held_since = time.monotonic()
        self._held.add((key, value))
        bisect.insort(self._held_keys, key)
        self._report_held()
        timers = ctx.timer_service()
        timers.register_processing_time_timer(
            timers.current_processing_time() + self.retry_interval_ms)
        if ctx.timestamp() is not None:
            # Fires at the latest with the end-of-input watermark.
            timers.register_event_time_timer(ctx.timestamp())

    def _forget(self, key):
        index = bisect.bisect_left(self._held_keys, key)
        if index < len(self._held_keys) and self._held_keys[index] == key:
            del self._held_keys[index]

    def _watch_end_of_input(self, ctx):
        # One event-time timer per key, just below the end-of-input
        # watermark: it fires only when the input is exhausted.
        current = ctx.get_current_key()
        if current not in self._keys_with_end_timer:
            self._keys_with_end_timer.add(current)
            ctx.timer_service().register_event_time_timer(END_OF_INPUT - 1)

    def process_element(self, value, ctx):
        self._watch_end_of_input(ctx)
        watermark = ctx.timer_service().current_watermark()
        self._gate.observe_watermark(watermark)
        key = self._key(ctx, watermark)
        decision = self._gate.decide(key)
        if decision == EMIT:
            yield value
        elif decision == HOLD:
            self._hold(key, value, ctx)

    def on_timer(self, timestamp, ctx):
        watermark = ctx.timer_service().current_watermark()
        if timestamp == END_OF_INPUT - 1:
            watermark = END_OF_INPUT
        self._gate.observe_watermark(watermark)
        held = list(self._held.get() or [])
        if not held:
            return
        finishing = watermark == END_OF_INPUT
        keep = []
        for key, value in held:
            if self._gate.peek(key) == HOLD and finishing:
                if self._gate.wait_until_decidable(key, self.end_of_input_timeout_s) == HOLD:
                    raise GateOverflow(
                        f"key {key} still undecidable {self.end_of_input_timeout_s} s after "
                        f"the end of input; {self.situation()}")
            if self._gate.peek(key) == HOLD:
                keep.append((key, value))
                continue
            self._forget(key)
            if self._gate.decide(key) == EMIT:
                yield value
        if len(keep) != len(held):
            # The oldest held record now came later than the ones released.
            self._held_since = time.monotonic()
        self._held.update(keep)
        self._report_held()
        self._warn_of_long_holds()
        if keep:
            timers = ctx.timer_service()
            timers.register_processing_time_timer(
                timers.current_processing_time() + self.retry_interval_ms)


def spread_key(value):
    """A stable key spreading records over the gate's subtasks."""
    return zlib.crc32(repr(value).encode()) % 1024


def gate(stream, pipeline, colour, endpoint, output_type=None, key_selector=spread_key,
         parallelism=None, **options):
    """Puts a cutover gate on ``stream``; returns the gated stream.

    ``key_selector`` only spreads held-record state over the subtasks; any
    function of the record works. ``options`` go to :class:`CutoverGate`.
    """
    keyed = stream.key_by(key_selector, key_type=Types.INT())
    gated = keyed.process(CutoverGate(pipeline, colour, endpoint, **options),
                          output_type=output_type)
    gated = gated.name(f"cutover-gate-{pipeline}").uid(options.get("gate_uid", "cutover-gate"))
    if parallelism is not None:
        gated = gated.set_parallelism(parallelism)
    return gated


__all__ = ["CutoverGate", "GateOverflow", "gate", "spread_key", "END_OF_INPUT", "DROP"]
