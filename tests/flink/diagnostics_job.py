"""A small PyFlink job with a cutover gate, for diagnostics.py: paced
records with timestamps, the gate, a discarding sink; optionally Flink's
Prometheus reporter on a port.
"""

import argparse
import sys
import time

from pyflink.common import Configuration, Duration, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import MapFunction, StreamExecutionEnvironment

from cutover_gate.flink import gate


class Stamp(TimestampAssigner):
    def extract_timestamp(self, value, record_timestamp):
        return value


class Pace(MapFunction):
    def __init__(self, per_second):
        self.interval = 1.0 / per_second

    def map(self, value):
        time.sleep(self.interval)
        return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--hold-warning-s", type=float, default=30.0)
    parser.add_argument("--end-of-input-timeout-s", type=float, default=120.0)
    parser.add_argument("--prometheus-port", type=int, default=None)
    args = parser.parse_args()

    config = Configuration()
    config.set_string("python.executable", sys.executable)
    config.set_string("python.client.executable", sys.executable)
    config.set_string("restart-strategy.type", "none")
    config.set_string("python.fn-execution.bundle.size", "1")
    config.set_string("pipeline.auto-watermark-interval", "10 ms")
    if args.prometheus_port is not None:
        config.set_string("metrics.reporter.prom.factory.class",
                          "org.apache.flink.metrics.prometheus.PrometheusReporterFactory")
        config.set_string("metrics.reporter.prom.port", str(args.prometheus_port))
        config.set_string("metrics.reporter.prom.interval", "1 s")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(1)

    base = 1_700_000_000_000
    source = env.from_collection([base + i * 10 for i in range(args.records)],
                                 type_info=Types.LONG())
    timed = source.map(Pace(args.rate), output_type=Types.LONG()).assign_timestamps_and_watermarks(
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(0))
        .with_timestamp_assigner(Stamp()))
    gated = gate(timed, pipeline="diagnostics", colour="GREEN", endpoint=args.endpoint,
                 output_type=Types.LONG(), hold_warning_s=args.hold_warning_s,
                 end_of_input_timeout_s=args.end_of_input_timeout_s)
    gated.filter(lambda v: False).print()
    env.execute("cutover diagnostics")


if __name__ == "__main__":
    main()
