"""A standalone Spark cluster on this machine, fan-out imputation and fan-in pooling.

Starts a Spark standalone master and two workers (one core each) from pip's pyspark
(`spark-class org.apache.spark.deploy.master.Master` / `...worker.Worker`; pip ships no
sbin start scripts), then:

1. fan-out: one `spark-submit jobs/impute.py --chains ...` application per group of chains,
   all at once, each with one executor, writing into the same DIR;
2. fan-in: `spark-submit jobs/pool.py --imputed DIR ...`;
3. the same run as one application (all chains, both executors) into another folder, pooled
   the same way;

and checks that the fanned-out imputations equal the single application's (same seed: the
same cells, bitwise, on this one machine) and so do the pooled tables (to 1e-10 relative:
the CSV's decimal round trip). sparkmice reaches the executors as `--py-files` (a zip of
the package), as on a cluster without it installed. Takes a few minutes (a JVM per
application); prints the seconds of each step. Everything is under a temporary folder
(or --workdir), and the cluster is stopped at the end.

    nice -n 10 python benchmarks/standalone_cluster.py [--m 4] [--maxit 5] [--groups 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO / "sparkmice" / "data" / "health_mar.parquet"
FORMULA = "y ~ age + bp + smoke + C(diet)"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def wait_for_workers(ui_port: int, n: int, timeout: float = 120) -> None:
    """Until the master's UI (JSON view) lists n alive workers."""
    import json
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as r:
                alive = [w for w in json.load(r)["workers"] if w["state"] == "ALIVE"]
            if len(alive) >= n:
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"fewer than {n} workers registered with the master in {timeout} s")


class Cluster:
    """Master + workers as child processes; logs under `root/logs`."""

    def __init__(self, root: Path, workers: int, worker_memory: str, env: dict[str, str]):
        self.root, self.env, self.processes = root, env, []
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        (root / "logs").mkdir(parents=True)
        master = self._start(
            "master", "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port),
        )  # fmt: skip
        wait_for_port(self.port, master, "the master")
        for i in range(workers):
            self._start(
                f"worker{i}", "org.apache.spark.deploy.worker.Worker", self.url,
                "--host", "127.0.0.1", "--cores", "1", "--memory", worker_memory,
                "--webui-port", str(free_port()), "--work-dir", str(root / f"work{i}"),
            )  # fmt: skip
        wait_for_workers(self.ui_port, workers)

    def _start(self, name: str, cls: str, *args: str) -> subprocess.Popen:
        log = open(self.root / "logs" / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        p = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), cls, *args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )  # fmt: skip
        self.processes.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.processes):  # only the processes this script started
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def submit_command(cluster: Cluster, py_files: Path, cores: int, script: str, *args: str):
    python = sys.executable
    return [
        str(spark_home() / "bin" / "spark-submit"),
        "--master", cluster.url, "--name", f"sparkmice {script} {' '.join(args[-2:])}",
        "--total-executor-cores", str(cores), "--executor-cores", "1",
        "--executor-memory", "1g", "--py-files", str(py_files),
        "--conf", f"spark.pyspark.python={python}",
        "--conf", f"spark.pyspark.driver.python={python}",
        "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=4",
        str(REPO / "jobs" / script), *args,
    ]  # fmt: skip


def run_all(commands: list[list[str]], env: dict[str, str], logs: Path, tag: str) -> float:
    """Run the commands at once (in the working folder, which gets Spark's scratch files);
    wait for all; fail naming the first that failed."""
    t = time.perf_counter()
    running = []
    for i, cmd in enumerate(commands):
        log = open(logs / f"{tag}{i}.log", "w")  # noqa: SIM115 (closed below)
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=logs.parent)
        running.append((p, log))
    for i, (p, log) in enumerate(running):
        code = p.wait()
        log.close()
        if code != 0:
            tail = (logs / f"{tag}{i}.log").read_text().splitlines()[-15:]
            raise RuntimeError(f"{tag}{i} exited with {code}:\n" + "\n".join(tail))
    return time.perf_counter() - t


def chain_groups(m: int, groups: int) -> list[str]:
    parts = np.array_split(np.arange(1, m + 1), groups)
    return [",".join(str(k) for k in part) for part in parts if len(part)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=4)
    parser.add_argument("--maxit", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--groups", type=int, default=2, help="fan-out applications")
    parser.add_argument("--input", default=str(DATA))
    parser.add_argument("--workdir", default=None, help="keep everything here (default: a temp)")
    args = parser.parse_args(argv)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="sparkmice-cluster-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}  # fmt: skip
    py_files = Path(shutil.make_archive(str(root / "sparkmice"), "zip", REPO, "sparkmice"))
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load: {load}\nworking folder: {root}")

    t = time.perf_counter()
    cluster = Cluster(root, workers=2, worker_memory="2g", env=env)
    print(f"master {cluster.url} and 2 workers up in {time.perf_counter() - t:.1f} s")
    try:
        common = ["--input", args.input, "--m", str(args.m), "--maxit", str(args.maxit),
                  "--seed", str(args.seed)]  # fmt: skip
        fanned, single = root / "fanned_out", root / "single"
        groups = chain_groups(args.m, args.groups)
        impute = [
            submit_command(cluster, py_files, 1, "impute.py", *common,
                           "--output", str(fanned), "--chains", chains)
            for chains in groups
        ]  # fmt: skip
        seconds = run_all(impute, env, root / "logs", "impute")
        print(f"fan-out: {len(groups)} applications (chains {groups}) at once: {seconds:.1f} s")
        pool_args = ["--formula", FORMULA, "--family", "binomial"]
        pool = submit_command(cluster, py_files, 2, "pool.py", "--imputed", str(fanned),
                              *pool_args, "--output", str(root / "fanned_out.csv"))  # fmt: skip
        print(f"fan-in: pool.py {run_all([pool], env, root / 'logs', 'pool'):.1f} s")

        one = submit_command(cluster, py_files, 2, "impute.py", *common,
                             "--output", str(single))  # fmt: skip
        seconds = run_all([one], env, root / "logs", "single")
        print(f"one application, all {args.m} chains: {seconds:.1f} s")
        pool = submit_command(cluster, py_files, 2, "pool.py", "--imputed", str(single),
                              *pool_args, "--output", str(root / "single.csv"))  # fmt: skip
        run_all([pool], env, root / "logs", "single_pool")
    finally:
        cluster.stop()

    from sparkmice import read_imputed

    a, b = read_imputed(str(fanned)), read_imputed(str(single))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    print(f"imputations equal: {len(a)} rows x {a.shape[1]} columns, m = {args.m}")
    pa_, pb = pd.read_csv(root / "fanned_out.csv"), pd.read_csv(root / "single.csv")
    assert pa_["term"].tolist() == pb["term"].tolist()
    numeric = [c for c in pa_.columns if c != "term" and pd.api.types.is_numeric_dtype(pa_[c])]
    np.testing.assert_allclose(pa_[numeric].to_numpy(), pb[numeric].to_numpy(), rtol=1e-10)
    print("pooled estimates equal (rtol 1e-10):")
    print(pa_[["term", "estimate", "std_error", "fmi"]].to_string(index=False))
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
