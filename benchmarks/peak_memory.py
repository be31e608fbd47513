"""One large run of the reference workload on Spark, with its seconds and peak memory.

    nice -n 10 python benchmarks/peak_memory.py --rows 1e7 --m 5 --maxit 5 [--master local[2]]

Times `sparkmice.mice(spark.read.parquet(FILE), m, maxit, seed=1, output=...)` (the file is
written once by `benchmarks/fixed_costs.reference_file`, outside the timer), and reports
the peak resident memory (VmHWM) of the driver's Python, the JVM (on local[N] the driver and
the executor), and the largest Python worker (a task holding its blocks), sampled from
/proc every second; and the JVM's own peak heap and off-heap use from Spark's executor
metrics (REST API).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixed_costs import reference_file  # noqa: E402


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _peak_kib(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return None
    kind = "jvm" if "java" in cmd.split(" ")[0] else "python"
    if pid == os.getpid():
        kind = "driver python"
    elif kind == "python":
        kind = "python worker"
    return kind, hwm


class PeakSampler(threading.Thread):
    """The largest VmHWM seen per kind of process in this process's tree."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peaks: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in _descendants(os.getpid()):
                found = _peak_kib(pid)
                if found:
                    kind, kib = found
                    self.peaks[kind] = max(self.peaks.get(kind, 0), kib)
            self.stop.wait(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--maxit", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    rows = int(args.rows)
    path = reference_file(rows)
    print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout}")
    import sparkmice
    from sparkmice.session import get_spark

    sampler = PeakSampler()
    sampler.start()
    spark = get_spark(args.master)
    spark.range(1).collect()
    sc = spark.sparkContext
    with tempfile.TemporaryDirectory(prefix="peak-memory-") as tmp:
        t = time.perf_counter()
        imp = sparkmice.mice(
            spark.read.parquet(str(path)), m=args.m, maxit=args.maxit, seed=1, output=f"{tmp}/out"
        )
        seconds = time.perf_counter() - t
        sweeps = imp.timings.groupby("chain")["seconds"].sum()
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/executors"
    with urllib.request.urlopen(url, timeout=30) as response:
        executors = json.load(response)
    sampler.stop.set()
    sampler.join()
    print(f"{rows} rows, m={args.m}, maxit={args.maxit}, {args.master}: {seconds:.1f} s "
          f"(sweeps per chain {float(sweeps.mean()):.1f} s)")  # fmt: skip
    for kind, kib in sorted(sampler.peaks.items()):
        print(f"  peak RSS {kind}: {kib / 2**20:.2f} GiB")
    for e in executors:
        peak = e.get("peakMemoryMetrics") or {}
        heap, off = peak.get("JVMHeapMemory", 0), peak.get("JVMOffHeapMemory", 0)
        print(f"  executor {e['id']}: JVM heap peak {heap / 2**30:.2f} GiB, "
              f"off-heap peak {off / 2**30:.2f} GiB, "
              f"max memory for storage {e['maxMemory'] / 2**30:.2f} GiB")  # fmt: skip
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
