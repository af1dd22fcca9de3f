"""Summarises a JFR recording of one bench job (`client/jvm/bench.sh --profile`):
the share of execution samples per method, as the innermost frame (self) and
anywhere on the stack (inclusive, for the gate's and the sink's methods and
Flink's chaining). Reads `jfr print --events jdk.ExecutionSample` on stdin."""
import collections
import re
import sys

FRAME = re.compile(r"^\s+([\w.$<>]+)\(.*?line: \d+", re.M)
INCLUSIVE = ("dev.cutover", "SinkWriterOperator", "pushToOperator", "StreamMap",
             "TimestampsAndWatermarks", "Long.valueOf", "TupleSerializer.copy")


def main():
    self_counts, inclusive = collections.Counter(), collections.Counter()
    for event in sys.stdin.read().split("jdk.ExecutionSample"):
        frames = FRAME.findall(event)
        if frames:
            self_counts[frames[0]] += 1
            inclusive.update(set(frames))
    total = sum(self_counts.values())
    if total == 0:
        sys.exit("no execution samples in the recording")
    print(f"{total} samples")
    print("self (innermost frame):")
    for method, n in self_counts.most_common(12):
        print(f"  {100 * n / total:5.1f}%  {method}")
    print("inclusive (on the stack):")
    for method, n in inclusive.most_common():
        if any(part in method for part in INCLUSIVE) and 100 * n / total >= 0.5:
            print(f"  {100 * n / total:5.1f}%  {method}")


main()
