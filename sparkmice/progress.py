"""Per-sweep reports of a running chain: printed by the driver, and stored beside the output.

A barrier task cannot talk to the driver through Spark while it runs, so its root task
writes one small JSON file per finished sweep under `DIR/_sparkmice/progress/`; the driver
polls that folder, prints a line per sweep and later assembles the trace, the logged events
and the timings from the same files. Files go through pyarrow's filesystems, so local paths,
HDFS and object stores work alike.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from typing import Any

from sparkmice.io.paths import filesystem_path, write_atomic
from sparkmice.io.run import read_reports
from sparkmice.sampler import SweepReport

log = logging.getLogger("sparkmice")


def ensure_logging() -> None:
    """Show sparkmice's INFO lines when the application has not configured logging."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("sparkmice: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def describe(report: SweepReport) -> str:
    return (
        f"chain {report.chain} iteration {report.iteration} done in {report.seconds:.2f} s "
        f"({report.exchanges} exchanges)"
    )


class ProgressWriter:
    """Writes each sweep report as `chain_<k>_sweep_<t>.json`, atomically."""

    def __init__(self, uri: str):
        self.fs, self.path = filesystem_path(uri)
        self.fs.create_dir(self.path, recursive=True)

    def __call__(self, report: SweepReport) -> None:
        name = f"{self.path}/chain_{report.chain}_sweep_{report.iteration:05d}.json"
        write_atomic(self.fs, name, json.dumps(asdict(report), default=float).encode())


class ProgressPrinter:
    """Polls the progress folder in a thread and logs each new sweep once."""

    def __init__(self, uri: str, chains: list[int], every: float = 1.0):
        self.uri, self.chains, self.every = uri, chains, every
        self.seen: set[tuple[int, int]] = set()
        self.lock = threading.Lock()  # polled by its own thread and by the chains' threads
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ProgressPrinter:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        self.poll()

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            self.poll()

    def poll(self) -> None:
        with self.lock:
            for r in read_reports(self.uri, self.chains):
                key = (r["chain"], r["iteration"])
                if key not in self.seen:
                    self.seen.add(key)
                    log.info(describe(SweepReport(**r)))
