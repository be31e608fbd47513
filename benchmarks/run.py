"""Benchmark: sparkmice against R mice, statsmodels and miceforest on the reference workload.

Generates the reference MAR data (``sparkmice.datasets.make_mar``) at the requested sizes,
times the peers' imputation (``benchmarks/peers/``) and sparkmice's
``sparkmice.mice(df, m=..., maxit=..., seed=..., engine=...)`` on the same files in the
same run, and writes a long CSV plus a Markdown table of seconds and ratios
(peer seconds / sparkmice seconds). Only the imputation is timed, for every tool.

    python benchmarks/run.py --rows 1e4,1e5 --engines barrier,perstep,inprocess \\
        --peers R,statsmodels --m 5 --maxit 5 [--reuse-peers]

Every measurement runs in its own child process (timeouts, crash isolation, a fresh JVM
per sparkmice run); a failure is recorded and the run goes on. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_DIR = HERE / "peers"
DEFAULT_RESULTS = HERE / "results" / "latest.csv"
DEFAULT_PEER_CACHE = HERE / "results" / "peers.csv"
DEFAULT_DATA = HERE / "data"
ENGINES = ("barrier", "perstep", "inprocess")
NUMERIC_INCOMPLETE = ("bp", "chol", "bmi", "lact")  # the workload's pmm variables
MICEFOREST_PYTHON = os.environ.get(
    "SPARKMICE_MICEFOREST_PYTHON", "/work/peer-venvs/miceforest/bin/python")
RESULT_RE = re.compile(r"^RESULT\s+(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Peer:
    """A peer tool: display name, the data format it reads, how to build its command."""

    key: str
    label: str
    suffix: str
    argv: tuple[str, ...]

    takes_method: bool = False  # its script takes the numeric method as a 5th argument

    def command(self, data: Path, m: int, maxit: int, seed: int,
                numeric_method: str = "pmm") -> list[str]:
        """The command line for one timed run."""
        extra = [numeric_method] if self.takes_method and numeric_method != "pmm" else []
        return [*self.argv, str(data.with_suffix(self.suffix)), str(m), str(maxit), str(seed),
                *extra]


PEERS: dict[str, Peer] = {
    "R": Peer("R", "R mice", ".csv", ("Rscript", str(PEERS_DIR / "anchor_mice.R")), True),
    "statsmodels": Peer("statsmodels", "statsmodels", ".parquet",
                        (sys.executable, str(PEERS_DIR / "anchor_statsmodels.py"))),
    "miceforest": Peer("miceforest", "miceforest", ".parquet",
                       (MICEFOREST_PYTHON, str(PEERS_DIR / "anchor_miceforest.py"))),
}
PEER_ALIASES = {"r": "R", "mice": "R", "rmice": "R", "statsmodels": "statsmodels",
                "sm": "statsmodels", "miceforest": "miceforest", "mf": "miceforest"}


@dataclass
class Machine:
    """Where the numbers were measured."""

    nproc: int
    mem_gib: float
    cpu: str
    host: str = field(default_factory=platform.node)

    @classmethod
    def detect(cls) -> Machine:
        """Read nproc, total memory and the CPU model from the OS."""
        nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 0)
        mem_gib, cpu = float("nan"), platform.processor() or platform.machine()
        try:
            meminfo = Path("/proc/meminfo").read_text()
            kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
            mem_gib = round(kib / 2**20, 1)
            found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
            cpu = found.group(1).strip() if found else cpu
        except (OSError, AttributeError):
            pass
        return cls(nproc=nproc, mem_gib=mem_gib, cpu=cpu)

    def describe(self) -> str:
        """One line for the report."""
        return f"{self.nproc} cores, {self.mem_gib:g} GiB RAM, {self.cpu} ({self.host})"


@dataclass
class Measurement:
    """One timed imputation (a row of the results CSV)."""

    tool: str  # peer key or "sparkmice"
    engine: str  # sparkmice engine, "" for peers
    rows: int
    m: int
    maxit: int
    seed: int
    seconds: float | None  # wall-clock seconds of the imputation
    status: str  # ok | error | timeout | unavailable
    cpu_s: float | None = None  # CPU seconds of the imputation (peers only)
    load: str = ""  # 1-minute load average at start -> end (a busy machine inflates seconds)
    source: str = "measured"  # measured | cached
    version: str = ""
    detail: str = ""
    measured_at: str = ""
    nproc: int = 0
    mem_gib: float = 0.0
    cpu: str = ""


# --------------------------------------------------------------------------- helpers

def parse_rows(text: str) -> list[int]:
    """``"1e4,1e5"`` -> ``[10000, 100000]``."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--rows: {part!r} is not a number") from None
        if value < 1 or value != int(value):
            raise argparse.ArgumentTypeError(f"--rows: {part!r} must be a positive integer")
        out.append(int(value))
    return out


def parse_list(text: str, allowed: dict[str, str], option: str) -> list[str]:
    """Comma list of names (case-insensitive; empty or "none" -> [])."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if names in ([], ["none"]):
        return []
    unknown = [n for n in names if n.lower() not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"{option}: unknown {unknown}; choose from {sorted(set(allowed.values()))} or none")
    return [allowed[n.lower()] for n in names]


def parse_result_line(stdout: str) -> dict[str, str]:
    """The last ``RESULT k=v k=v`` line a peer or worker printed, as a dict."""
    found = RESULT_RE.findall(stdout)
    if not found:
        return {}
    return dict(kv.split("=", 1) for kv in found[-1].split() if "=" in kv)


def data_path(data_dir: Path, rows: int, seed: int) -> Path:
    """Stem (no suffix) of the data files for ``rows``; add .parquet / .csv."""
    return data_dir / f"mar_n{rows}_seed{seed}"


def ensure_data(data_dir: Path, rows: int, seed: int) -> Path:
    """Write make_mar(rows, seed) as .parquet and .csv (NA for missing) unless present."""
    stem = data_path(data_dir, rows, seed)
    parquet, csv_path = stem.with_suffix(".parquet"), stem.with_suffix(".csv")
    if parquet.exists() and csv_path.exists():
        return stem
    sys.path.insert(0, str(REPO))
    from sparkmice.datasets import make_mar, write_frame

    t0 = time.perf_counter()
    frame = make_mar(rows, seed)
    for path in (parquet, csv_path):
        tmp = path.with_name(path.stem + ".tmp" + path.suffix)
        write_frame(frame, tmp)
        tmp.replace(path)
    log(f"data: wrote {stem}.{{parquet,csv}} in {time.perf_counter() - t0:.1f} s")
    return stem


def log(message: str) -> None:
    """Progress to stderr with a timestamp."""
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def now() -> str:
    """ISO timestamp (seconds)."""
    return dt.datetime.now().isoformat(timespec="seconds")


def git_commit() -> str:
    """Short commit of the checkout, with ``+dirty`` if sparkmice/ has local changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "sparkmice"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


@dataclass
class Child:
    """Outcome of one child process."""

    status: str
    fields: dict[str, str]
    detail: str
    load: str

    def number(self, key: str) -> float | None:
        """A numeric RESULT field, or None."""
        return float(self.fields[key]) if self.status == "ok" and key in self.fields else None


def run_child(cmd: list[str], timeout: float, log_path: Path,
              env: dict[str, str] | None = None) -> Child:
    """Run a command, parse its RESULT line; the full output goes to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load0 = load_average()

    def done(status: str, fields_: dict[str, str], detail: str) -> Child:
        return Child(status, fields_, detail, f"{load0:.1f}->{load_average():.1f}")

    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError as exc:
        return done("unavailable", {}, f"{cmd[0]} not found ({exc.strerror})")
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
        log_path.write_text(f"$ {shlex.join(cmd)}\nTIMEOUT after {timeout} s\n{out or ''}")
        return done("timeout", {}, f"no result within {timeout:g} s")
    log_path.write_text(f"$ {shlex.join(cmd)}\n# rc={proc.returncode}\n"
                        f"## stdout\n{proc.stdout}\n## stderr\n{proc.stderr}")
    fields_ = parse_result_line(proc.stdout)
    if proc.returncode != 0 or "impute_s" not in fields_:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return done("error", fields_, f"rc={proc.returncode}: {tail[0][:300]}")
    return done("ok", fields_, "")


# --------------------------------------------------------------------------- peers cache

PEER_KEY = ("tool", "rows", "m", "maxit")


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV written by write_measurements ([] if absent)."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def from_row(row: dict[str, str]) -> Measurement:
    """A CSV row back to a Measurement."""
    seconds, cpu_s = row.get("seconds") or "", row.get("cpu_s") or ""
    return Measurement(
        tool=row["tool"], engine=row.get("engine", ""), rows=int(row["rows"]), m=int(row["m"]),
        maxit=int(row["maxit"]), seed=int(row.get("seed") or 1),
        seconds=float(seconds) if seconds else None, status=row.get("status", "ok"),
        cpu_s=float(cpu_s) if cpu_s else None, load=row.get("load", ""),
        source=row.get("source", "measured"), version=row.get("version", ""),
        detail=row.get("detail", ""), measured_at=row.get("measured_at", ""),
        nproc=int(row.get("nproc") or 0), mem_gib=float(row.get("mem_gib") or 0),
        cpu=row.get("cpu", ""))


def write_measurements(path: Path, items: Sequence[Measurement]) -> None:
    """Write measurements as CSV (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(Measurement)])
        writer.writeheader()
        for item in items:
            writer.writerow(asdict(item))
    tmp.replace(path)


def cached_peer(cache: Path, tool: str, rows: int, m: int, maxit: int) -> Measurement | None:
    """The cached successful result of a peer for (tool, rows, m, maxit), if any."""
    for row in read_csv_rows(cache):
        if (row["tool"], int(row["rows"]), int(row["m"]), int(row["maxit"])) == (
                tool, rows, m, maxit) and row.get("status") == "ok":
            found = from_row(row)
            found.source = "cached"
            return found
    return None


def store_peer(cache: Path, item: Measurement) -> None:
    """Insert or replace a successful peer result in the cache, keyed by PEER_KEY."""
    if item.status != "ok" or item.source != "measured":
        return
    key = tuple(str(getattr(item, k)) for k in PEER_KEY)
    kept = [from_row(r) for r in read_csv_rows(cache)
            if tuple(r[k] for k in PEER_KEY) != key]
    items = sorted([*kept, item], key=lambda x: (x.tool, x.rows, x.m, x.maxit))
    write_measurements(cache, items)


# --------------------------------------------------------------------------- runs

def run_peer(peer: Peer, stem: Path, rows: int, args: argparse.Namespace,
             machine: Machine) -> Measurement:
    """Time one peer on one data size (or take it from the cache with --reuse-peers)."""
    if args.reuse_peers:
        hit = cached_peer(args.peer_cache, peer.key, rows, args.m, args.maxit)
        if hit is not None:
            log(f"{peer.label} n={rows}: cached {hit.seconds:.1f} s ({hit.measured_at}, "
                f"load {hit.load or '?'})")
            if (hit.nproc, hit.cpu) != (machine.nproc, machine.cpu):
                log(f"WARNING: cached {peer.label} n={rows} was measured on another machine "
                    f"({hit.nproc} cores, {hit.cpu}); ratios are not comparable")
            return hit
    log(f"{peer.label} n={rows}: running")
    log_path = args.results.parent / f"{peer.key}_n{rows}_m{args.m}_maxit{args.maxit}.log"
    child = run_child(peer.command(stem, args.m, args.maxit, args.seed, args.numeric_method),
                      args.timeout, log_path)
    seconds = child.number("impute_s")
    version = " ".join(f"{k}={v}" for k, v in child.fields.items()
                       if k not in ("impute_s", "cpu_s", "rows", "m", "maxit"))
    item = Measurement(peer.key, "", rows, args.m, args.maxit, args.seed, seconds,
                       child.status, cpu_s=child.number("cpu_s"), load=child.load,
                       version=version, detail=child.detail or f"log: {log_path.name}",
                       measured_at=now(), nproc=machine.nproc, mem_gib=machine.mem_gib,
                       cpu=machine.cpu)
    log(f"{peer.label} n={rows}: {child.status} "
        f"{'' if seconds is None else f'{seconds:.1f} s'} load {child.load} {child.detail}")
    store_peer(args.peer_cache, item)
    return item


def run_sparkmice(engine: str, stem: Path, rows: int, args: argparse.Namespace,
                  machine: Machine) -> Measurement:
    """Time sparkmice.mice with one engine in a child process (see worker())."""
    log(f"sparkmice {engine} n={rows}: running")
    cmd = [sys.executable, str(Path(__file__).resolve()), "_worker", "--engine", engine,
           "--data", str(stem.with_suffix(".parquet")), "--m", str(args.m),
           "--maxit", str(args.maxit), "--seed", str(args.seed), "--master", args.master,
           "--numeric-method", args.numeric_method]
    for conf in args.conf:
        cmd += ["--conf", conf]
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    log_path = args.results.parent / f"sparkmice_{engine}_n{rows}_m{args.m}_maxit{args.maxit}.log"
    child = run_child(cmd, args.timeout, log_path, env=env)
    seconds = child.number("impute_s")
    forced = child.fields.get("materialised", "")
    used = child.fields.get("engine_used", engine)
    if child.status == "ok" and used != engine:
        child.detail = f"asked for {engine}, ran {used}"
    item = Measurement("sparkmice", engine, rows, args.m, args.maxit, args.seed, seconds,
                       child.status, load=child.load,
                       version=f"commit={args.commit} pyspark={child.fields.get('pyspark', '')}",
                       detail=child.detail or (f"materialised: {forced}" if forced else ""),
                       measured_at=now(), nproc=machine.nproc, mem_gib=machine.mem_gib,
                       cpu=machine.cpu)
    log(f"sparkmice {engine} n={rows}: {child.status} "
        f"{'' if seconds is None else f'{seconds:.1f} s'} load {child.load} {child.detail}")
    return item


def materialise(result: Any, depth: int = 0) -> list[str]:
    """Force a lazily computed result of sparkmice.mice; return what was forced.

    Spark DataFrames are written to the ``noop`` sink (every row and column computed,
    nothing collected); containers and attributes of result objects are searched two levels
    deep. pandas objects and anything else count as already computed.
    """
    kind = type(result).__module__ + "." + type(result).__qualname__
    if kind.startswith("pyspark.") and hasattr(result, "write") and hasattr(result, "schema"):
        result.write.format("noop").mode("overwrite").save()
        return [type(result).__name__]
    if depth >= 2 or result is None or kind.startswith(("pandas.", "numpy.", "builtins.str")):
        return []
    if isinstance(result, dict):
        children: list[Any] = list(result.values())
    elif isinstance(result, (list, tuple)):
        children = list(result)
    elif hasattr(result, "__dict__"):
        children = list(vars(result).values())
    else:
        children = []
    forced: list[str] = []
    for child in children:
        forced += materialise(child, depth + 1)
    return forced


def worker(argv: Sequence[str]) -> None:
    """Child process: load the data, time sparkmice.mice(...) and print a RESULT line."""
    parser = argparse.ArgumentParser(prog="run.py _worker")
    parser.add_argument("--engine", required=True, choices=ENGINES)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--maxit", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--conf", action="append", default=[])
    parser.add_argument("--numeric-method", default="pmm")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import pyspark

    mice = find_mice()
    # Spark runs write their completed data to a temporary folder: keep it out of /tmp.
    scratch = Path(tempfile.mkdtemp(prefix="sparkmice-bench-", dir=args.data.parent))
    tempfile.tempdir = str(scratch)
    if args.engine == "inprocess":
        import pandas as pd

        df: Any = pd.read_parquet(args.data)
    else:
        from pyspark.sql import SparkSession

        builder = (SparkSession.builder.master(args.master).appName("sparkmice-bench")
                   .config("spark.driver.memory", "6g")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false"))
        for conf in args.conf:
            key, _, value = conf.partition("=")
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.range(1).count()  # JVM start and first-job warm-up are not imputation
        df = spark.read.parquet(str(args.data))

    t0 = time.perf_counter()
    method = ({} if args.numeric_method == "pmm"
              else dict.fromkeys(NUMERIC_INCOMPLETE, args.numeric_method))
    result = mice(df, m=args.m, maxit=args.maxit, seed=args.seed, engine=args.engine,
                  method=method)
    forced = materialise(result)
    seconds = time.perf_counter() - t0
    used = getattr(result, "engine", args.engine)
    print(f"RESULT impute_s={seconds:.3f} engine={args.engine} engine_used={used} "
          f"pyspark={pyspark.__version__} materialised={'+'.join(forced) or 'none'}", flush=True)
    for note in getattr(result, "notes", None) or []:
        print(f"note: {note}")
    shutil.rmtree(scratch, ignore_errors=True)


def find_mice() -> Any:
    """``sparkmice.mice``; before the package exports it, ``sparkmice.api.mice``."""
    import sparkmice

    if hasattr(sparkmice, "mice"):
        return sparkmice.mice
    try:
        from sparkmice.api import mice
    except ImportError as exc:
        raise SystemExit(f"sparkmice.mice is not available in this checkout ({exc})") from exc
    print("note: sparkmice does not export mice yet; using sparkmice.api.mice")
    return mice


# --------------------------------------------------------------------------- report

def fmt_seconds(item: Measurement | None) -> str:
    """Seconds as text, with a mark for cached values and the status for failures."""
    if item is None:
        return "–"
    if item.status != "ok" or item.seconds is None:
        return item.status
    text = f"{item.seconds:,.1f}" if item.seconds < 100 else f"{item.seconds:,.0f}"
    return text + (" †" if item.source == "cached" else "")


def markdown(items: Sequence[Measurement], args: argparse.Namespace, machine: Machine,
             peers: Sequence[str], engines: Sequence[str]) -> str:
    """The report: machine, seconds per tool and size, ratios peer / sparkmice."""
    by_key = {(i.tool, i.engine, i.rows): i for i in items}
    rows = sorted({i.rows for i in items})
    lines = [
        "# sparkmice benchmark",
        "",
        f"- When: {now()}; sparkmice commit {args.commit}",
        f"- Machine: {machine.describe()}",
        f"- Workload: `sparkmice.datasets.make_mar(rows, seed={args.seed})` (11 columns, 6 "
        f"incomplete), m = {args.m}, maxit = {args.maxit}; Spark master `{args.master}`",
        f"- Numeric method: {args.numeric_method} for {', '.join(NUMERIC_INCOMPLETE)} in "
        "sparkmice and R mice (miceforest and statsmodels keep their own models)",
        f"- Command: `{shlex.join(['python', 'benchmarks/run.py', *args.argv])}`",
        "- Seconds of imputation only (no data loading, start-up or analysis); "
        "† = peer result reused from `peers.csv`.",
        "",
        "## Seconds",
        "",
    ]
    head = ["rows", *(PEERS[p].label for p in peers), *(f"sparkmice {e}" for e in engines)]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for n in rows:
        cells = [f"{n:,}"]
        cells += [fmt_seconds(by_key.get((p, "", n))) for p in peers]
        cells += [fmt_seconds(by_key.get(("sparkmice", e, n))) for e in engines]
        lines.append("| " + " | ".join(cells) + " |")
    if peers and engines:
        lines += ["", "## Ratios (peer seconds / sparkmice seconds; > 1 = sparkmice faster)",
                  "", "| rows | engine | sparkmice s | "
                  + " | ".join(PEERS[p].label for p in peers) + " |",
                  "|" + " --- |" * (3 + len(peers))]
        for n in rows:
            for e in engines:
                ours = by_key.get(("sparkmice", e, n))
                cells = [f"{n:,}", e, fmt_seconds(ours)]
                for p in peers:
                    theirs = by_key.get((p, "", n))
                    ok = (ours is not None and theirs is not None and ours.seconds
                          and theirs.seconds is not None and ours.status == theirs.status == "ok")
                    cells.append(f"{theirs.seconds / ours.seconds:.2f}" if ok else "–")
                lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Conditions", "",
              "CPU seconds (peers' own process) and the 1-minute load average at start -> end "
              f"of each measurement; load above {machine.nproc} means other work competed.",
              "", "| tool | rows | seconds | CPU s | load | when |",
              "|" + " --- |" * 6]
    for i in sorted(items, key=lambda x: (x.rows, x.tool, x.engine)):
        name = f"{i.tool} {i.engine}".strip()
        cpu_s = "–" if i.cpu_s is None else f"{i.cpu_s:,.1f}"
        lines.append(f"| {name} | {i.rows:,} | {fmt_seconds(i)} | {cpu_s} | {i.load or '–'} "
                     f"| {i.measured_at} |")
    failures = [i for i in items if i.status != "ok"]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {i.tool} {i.engine} n={i.rows:,}: {i.status} — {i.detail}"
                  for i in failures]
    versions = sorted({f"{i.tool}: {i.version}" for i in items if i.version})
    if versions:
        lines += ["", "## Versions", ""] + [f"- {v}" for v in versions]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=parse_rows, default=parse_rows("1e4,1e5,1e6"),
                        help="comma list of sizes, e.g. 1e4,1e5 (default 1e4,1e5,1e6)")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help="comma list of sparkmice engines: barrier,perstep,inprocess "
                             "(or none)")
    parser.add_argument("--peers", default="R,statsmodels",
                        help="comma list of peers: R,statsmodels,miceforest (or none)")
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--maxit", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="data and imputation seed")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help="CSV of this run; the Markdown report goes beside it (.md)")
    parser.add_argument("--peer-cache", type=Path, default=DEFAULT_PEER_CACHE,
                        help="peers' results keyed by (peer, rows, m, maxit)")
    parser.add_argument("--reuse-peers", action="store_true",
                        help="take peers' times from the cache when present")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--master", default="local[2]", help="Spark master for sparkmice")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Spark configuration (repeatable)")
    parser.add_argument("--timeout", type=float, default=3 * 3600,
                        help="seconds allowed per measurement (default 3 h)")
    parser.add_argument("--numeric-method", default="pmm",
                        help="method of bp, chol, bmi, lact in sparkmice and R mice, e.g. "
                             "cart or rf (default pmm; peers' cache: peers_<method>.csv)")
    args = parser.parse_args(argv)
    if args.numeric_method != "pmm" and args.peer_cache == DEFAULT_PEER_CACHE:
        args.peer_cache = DEFAULT_PEER_CACHE.with_name(f"peers_{args.numeric_method}.csv")
    engine_names = {e: e for e in ENGINES}
    try:
        args.engine_list = parse_list(args.engines, engine_names, "--engines")
        args.peer_list = parse_list(args.peers, PEER_ALIASES, "--peers")
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if args.m < 1 or args.maxit < 1:
        parser.error(f"--m and --maxit must be >= 1 (got m={args.m}, maxit={args.maxit})")
    args.argv = list(argv)
    return args


def main(argv: Sequence[str]) -> int:
    """Run the benchmark; return a process exit code (1 if any measurement failed)."""
    if argv[:1] == ["_worker"]:
        worker(argv[1:])
        return 0
    args = parse_args(argv)
    args.commit = git_commit()
    args.results = args.results.resolve()
    machine = Machine.detect()
    log(f"machine: {machine.describe()}")
    items: list[Measurement] = []
    report = args.results.with_suffix(".md")
    for rows in args.rows:
        stem = ensure_data(args.data_dir, rows, args.seed)
        for key in args.peer_list:
            items.append(run_peer(PEERS[key], stem, rows, args, machine))
            write_measurements(args.results, items)
        for engine in args.engine_list:
            items.append(run_sparkmice(engine, stem, rows, args, machine))
            write_measurements(args.results, items)
        report.write_text(markdown(items, args, machine, args.peer_list, args.engine_list))
    report.write_text(markdown(items, args, machine, args.peer_list, args.engine_list))
    log(f"wrote {args.results} and {report}")
    print(report.read_text())
    return int(any(i.status != "ok" for i in items))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
