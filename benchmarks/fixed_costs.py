"""Fixed costs of a Spark run (issue 12): where the time goes outside the sweeps.

Prints, on local[2] by default, each in this one process and JVM:

- JVM start: `get_spark()` and a first tiny job (not part of the other numbers);
- read + plan of the reference workload at 10^6 rows and at 20,000 rows: the engine's
  `prepare()` (row ids, the shuffle into packed blocks, the column summaries, the plan);
- the README quick start (20,000 rows, m = 20, maxit = 10): the whole `mice()` call, its
  read + plan, and per chain its wall time minus its sweeps' seconds (the per-chain overhead:
  the job's start, loading its blocks, writing and committing its files);
- the quick start's fit + pool of the 20 imputations (`fit_imputations` + `pool`).

Each phase also lists the Spark jobs it ran (count and seconds, from the Spark UI's REST
API), so a repeated count or collect shows up, and the CPU seconds of this process and its
children (the JVM, the Python workers): on a machine shared with other work the wall
seconds swing with the load, the CPU seconds much less. Targets (issue 12, 2 cores): read + plan
<= 5 s at 10^6 rows, <= 1 s overhead per chain, quick start <= 20 s, fit + pool <= 5 s.

    nice -n 10 python benchmarks/fixed_costs.py [--rows 1e6] [--master local[2]] [--jobs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUICK_START = REPO / "sparkmice" / "data" / "health_mar.parquet"
FORMULA = "y ~ age + bp + smoke + C(diet)"


def reference_file(rows: int, seed: int = 1) -> Path:
    """The reference workload's Parquet file (written once, as benchmarks/run.py does)."""
    path = HERE / "data" / f"mar_n{rows}_seed{seed}.parquet"
    if not path.exists():
        from sparkmice.datasets import make_mar

        path.parent.mkdir(parents=True, exist_ok=True)
        make_mar(rows, seed=seed).to_parquet(path, index=False)
    return path


class Jobs:
    """The Spark jobs that ran since the last `take()`, from the UI's REST API."""

    def __init__(self, spark):
        sc = spark.sparkContext
        self.url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/jobs"
        self.seen: set[int] = {j["jobId"] for j in self._all()}

    def _all(self) -> list[dict]:
        try:
            with urllib.request.urlopen(self.url, timeout=10) as response:
                return json.load(response)
        except OSError:  # no UI (spark.ui.enabled=false): no job list
            return []

    def take(self) -> list[dict]:
        """New jobs, without this script's own warm-up (the UI may list it late)."""
        new = [j for j in self._all() if j["jobId"] not in self.seen and __file__ not in j["name"]]
        self.seen |= {j["jobId"] for j in new}
        return sorted(new, key=lambda j: j["jobId"])


class Cpu:
    """CPU seconds of this process and all its descendants since the last `take()`, from
    /proc (Linux; nan elsewhere); exited children count through their parents."""

    def __init__(self):
        self.last = self._now()

    @staticmethod
    def _now() -> float:
        try:
            stats = {}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:  # gone meanwhile
                    continue
                ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
                stats[int(pid)] = (int(fields[1]), ticks)
        except OSError:
            return float("nan")
        tree, grew = {os.getpid()}, True
        while grew:
            new = {pid for pid, (parent, _) in stats.items() if parent in tree} - tree
            tree, grew = tree | new, bool(new)
        return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")

    def take(self) -> float:
        now = self._now()
        seconds, self.last = now - self.last, now
        return seconds


def _seconds(job: dict) -> float:
    from datetime import datetime

    def at(s: str) -> datetime:
        return datetime.strptime(s.replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")

    if "completionTime" not in job:
        return float("nan")
    return (at(job["completionTime"]) - at(job["submissionTime"])).total_seconds()


def summary(jobs: list[dict], show: bool, cpu: float) -> str:
    total = sum(_seconds(j) for j in jobs)
    text = f"{len(jobs)} Spark jobs, {total:.1f} s inside them; CPU {cpu:.1f} s"
    if show:
        for j in jobs:
            name = (j.get("description") or j["name"]).splitlines()[0][:70]
            text += f"\n      job {j['jobId']:>3} {_seconds(j):6.2f} s  {name}"
    return text


class ChainClock:
    """Wall seconds of every chain job and of the engine's prepare(), by wrapping them."""

    def __init__(self):
        from sparkmice.engines.spark import SparkEngine

        self.chains: dict[int, float] = {}
        self.prepare: list[float] = []
        run_chain, prepare = SparkEngine._run_chain, SparkEngine.prepare

        def timed_chain(engine, task, *args):
            t = time.perf_counter()
            try:
                return run_chain(engine, task, *args)
            finally:
                self.chains[task.chain] = time.perf_counter() - t

        def timed_prepare(engine):
            t = time.perf_counter()
            try:
                return prepare(engine)
            finally:
                self.prepare.append(time.perf_counter() - t)

        SparkEngine._run_chain, SparkEngine.prepare = timed_chain, timed_prepare


def read_plan(spark, path: Path) -> float:
    """Seconds of read + plan: the Spark engine's prepare() on a fresh DataFrame."""
    from sparkmice.config import MiceConfig
    from sparkmice.engines.spark import SparkEngine

    engine = SparkEngine(spark.read.parquet(str(path)), MiceConfig.from_dict({"seed": 1}))
    t = time.perf_counter()
    try:
        engine.prepare()
        return time.perf_counter() - t
    finally:
        engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6, help="rows of the large read + plan")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--jobs", action="store_true", help="list every Spark job")
    parser.add_argument("--skip-large", action="store_true", help="no 10^6-row read + plan")
    args = parser.parse_args(argv)
    rows = int(args.rows)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load before: {load}")

    t = time.perf_counter()
    from sparkmice.session import get_spark

    spark = get_spark(args.master)
    spark.range(1).collect()
    print(f"JVM start + first job: {time.perf_counter() - t:.1f} s (not counted below)")
    jobs = Jobs(spark)
    clock = ChainClock()
    cpu = Cpu()

    import sparkmice

    results: dict[str, float] = {}
    if not args.skip_large:
        big = reference_file(rows)
        results[f"read + plan, {rows} rows"] = read_plan(spark, big)
        print(f"read + plan, {rows} rows: {results[f'read + plan, {rows} rows']:.1f} s "
              f"(target 5 s); {summary(jobs.take(), args.jobs, cpu.take())}")  # fmt: skip
    results["read + plan, 20000 rows"] = read_plan(spark, QUICK_START)
    print(f"read + plan, 20000 rows: {results['read + plan, 20000 rows']:.1f} s; "
          f"{summary(jobs.take(), args.jobs, cpu.take())}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="fixed-costs-") as tmp:
        clock.chains.clear()
        t = time.perf_counter()
        df = spark.read.parquet(str(QUICK_START))
        imp = sparkmice.mice(df, m=20, maxit=10, seed=1, output=f"{tmp}/health")
        quick = time.perf_counter() - t
        sweeps = imp.timings.groupby("chain")["seconds"].sum()
        overhead = [clock.chains[k] - sweeps.get(k, 0.0) for k in sorted(clock.chains)]
        per_chain = sum(overhead) / len(overhead)
        print(
            f"quick start (20000 rows, m=20, maxit=10): {quick:.1f} s (target 20 s); "
            f"read + plan {clock.prepare[-1]:.1f} s; {summary(jobs.take(), args.jobs, cpu.take())}"
        )
        print(f"  per chain: wall {sum(clock.chains.values()) / len(clock.chains):.2f} s, "
              f"sweeps {float(sweeps.mean()):.2f} s, overhead {per_chain:.2f} s "
              f"(max {max(overhead):.2f} s; target 1 s)")  # fmt: skip
        t = time.perf_counter()
        fits = sparkmice.fit_imputations(imp.complete("long"), FORMULA, family="binomial")
        pooled = sparkmice.pool(fits)
        fit_pool = time.perf_counter() - t
        print(
            f"fit + pool of the 20 imputations: {fit_pool:.1f} s (target 5 s); "
            f"{summary(jobs.take(), args.jobs, cpu.take())}"
        )
        print(pooled[["term", "estimate", "std_error"]].to_string(index=False))
    results.update({"quick start": quick, "overhead per chain": per_chain, "fit + pool": fit_pool})
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load after: {load}")
    print("RESULT " + json.dumps({k: round(v, 2) for k, v in results.items()}))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
