"""One colour of the end-to-end test: a real PyFlink job (local execution)
reading the shared bounded input, with the cutover gate before a file sink.

    python job.py --colour GREEN --parallelism 2 --endpoint http://127.0.0.1:7700 \
        --pipeline e2e --input records.txt --output out/green
"""

import argparse
import sys
import time

from pyflink.common import Configuration, Duration, Encoder, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import MapFunction, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSink

from cutover_gate.flink import gate


class RecordTimestamp(TimestampAssigner):
    def extract_timestamp(self, value, record_timestamp):
        return value[1]


class Throttle(MapFunction):
    """Paces the source so that both jobs run side by side for a while."""

    def __init__(self, per_second):
        self.interval = 1.0 / per_second
        self.next = None

    def map(self, value):
        now = time.monotonic()
        if self.next is None:
            self.next = now
        if now < self.next:
            time.sleep(self.next - now)
        self.next += self.interval
        return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--colour", required=True)
    parser.add_argument("--parallelism", type=int, required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--bundle-size", type=int, default=1)
    parser.add_argument("--out-of-orderness-ms", type=int, default=300)
    parser.add_argument("--tls-dir", default=None,
                        help="mutual TLS with the files `cutover dev-pki` wrote there")
    args = parser.parse_args()

    records = []
    with open(args.input) as lines:
        for line in lines:
            record_id, timestamp = line.split()
            records.append((int(record_id), int(timestamp)))

    config = Configuration()
    config.set_string("python.executable", sys.executable)
    config.set_string("python.client.executable", sys.executable)
    config.set_string("restart-strategy.type", "none")
    config.set_string("python.fn-execution.bundle.size", str(args.bundle_size))
    config.set_string("python.fn-execution.bundle.time", "10")
    config.set_string("pipeline.auto-watermark-interval", "10 ms")
    config.set_string("execution.checkpointing.interval", "1 s")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(args.parallelism)

    source = env.from_collection(records, type_info=Types.TUPLE([Types.LONG(), Types.LONG()]))
    paced = source.map(Throttle(args.rate), output_type=source.get_type()).set_parallelism(1)
    timed = paced.assign_timestamps_and_watermarks(
        WatermarkStrategy.for_bounded_out_of_orderness(
            Duration.of_millis(args.out_of_orderness_ms)
        ).with_timestamp_assigner(RecordTimestamp())
    ).set_parallelism(1)
    gated = gate(
        timed,
        pipeline=args.pipeline,
        colour=args.colour,
        endpoint=args.endpoint,
        output_type=timed.get_type(),
        job_id=f"{args.pipeline}-{args.colour.lower()}",
        **tls_options(args.tls_dir),
    )
    lines = gated.map(lambda r: str(r[0]), output_type=Types.STRING())
    lines.sink_to(
        FileSink.for_row_format(args.output, Encoder.simple_string_encoder()).build()
    )
    env.execute(f"cutover e2e {args.pipeline} {args.colour}")


def tls_options(folder):
    """The gate's TLS options for the files in `folder` (none: plaintext)."""
    if folder is None:
        return {}
    return {"tls_ca": f"{folder}/ca.pem", "tls_cert": f"{folder}/client.pem",
            "tls_key": f"{folder}/client-key.pem"}


if __name__ == "__main__":
    main()
