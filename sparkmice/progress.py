"""Per-sweep reports of a running chain: printed by the driver, and stored beside the output.

A barrier task cannot talk to the driver through Spark while it runs, so its root task
writes one small JSON file per finished sweep under `DIR/_sparkmice/progress/`; the driver
polls that folder, prints a line per sweep and later assembles the trace, the logged events
and the timings from the same files. Files go through pyarrow's filesystems, so local paths,
HDFS and object stores work alike.

Every finished sweep reaches the driver through `announce`: a log line in batch jobs and
terminals, or, while a run in a notebook (an IPython kernel: Jupyter, Databricks) holds a
`NotebookBar`, one progress bar updated in place (sweeps done of chains × sweeps, chains
done, elapsed time, ETA). `SPARKMICE_PROGRESS=log` keeps the log lines in a notebook.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
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
                    announce(SweepReport(**r))


# -- a notebook's progress bar ------------------------------------------------------------------
_bar: NotebookBar | None = None  # the bar of the run in progress, if a notebook shows one


def announce(report: SweepReport) -> None:
    """A finished sweep: on the notebook's bar while one is shown, else a log line."""
    bar = _bar
    if bar is not None:
        bar.update(report)
    else:
        log.info(describe(report))


def in_notebook() -> bool:
    """Whether this process is an IPython kernel (Jupyter, Databricks), whose cells show
    rich output; a terminal IPython or a batch job is not (IPython is never imported here)."""
    if os.environ.get("SPARKMICE_PROGRESS", "").lower() == "log":
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookBar:
    """One bar for a run's chains × sweeps, shown in the cell and updated in place."""

    def __init__(self, sweeps: dict[int, int]):
        shown = importlib.import_module("IPython.display")  # there: this is a notebook
        self.html, self.sweeps = shown.HTML, sweeps  # chain -> sweeps it runs
        self.done: dict[int, int] = {k: 0 for k in sweeps}
        self.start = time.perf_counter()
        self.lock = threading.Lock()  # updated by the Spark engine's threads
        self.handle = shown.display(self.html(self.render()), display_id=True)

    @property
    def total(self) -> int:
        return sum(self.sweeps.values())

    def update(self, report: SweepReport) -> None:
        with self.lock:
            k = report.chain
            if k in self.done:
                self.done[k] = min(self.done[k] + 1, self.sweeps[k])
            if self.handle is not None:
                self.handle.update(self.html(self.render()))

    def render(self) -> str:
        """The bar: sweeps done of all, chains done, elapsed and the time left (at the
        pace so far, wall clock: chains running at once count once)."""
        done, total = sum(self.done.values()), self.total
        chains = sum(self.done[k] == n for k, n in self.sweeps.items())
        elapsed = time.perf_counter() - self.start
        left = f"{elapsed / done * (total - done):.0f} s left" if done else "starting"
        text = (
            f"sparkmice: {done}/{total} sweeps, {chains}/{len(self.sweeps)} chains done, "
            f"{elapsed:.0f} s, {left if done < total else 'done'}"
        )
        return (
            f'<div><progress value="{done}" max="{max(total, 1)}" style="width:320px">'
            f"</progress> <span>{html.escape(text)}</span></div>"
        )


@contextlib.contextmanager
def notebook_bar(sweeps: dict[int, int]) -> Iterator[NotebookBar | None]:
    """Show a bar for the sweeps (chain -> sweeps to run) while the block runs, in a
    notebook; elsewhere nothing changes (the log lines stay)."""
    global _bar
    if not in_notebook() or not sweeps:
        yield None
        return
    _bar = NotebookBar(sweeps)
    try:
        yield _bar
    finally:
        _bar = None
