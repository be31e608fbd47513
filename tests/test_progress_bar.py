"""The notebook progress bar (sparkmice/progress.py: announce, in_notebook, NotebookBar):
in an IPython kernel one bar of chains × sweeps is updated in place instead of a log line
per sweep; in batch jobs and terminals the log lines stay. The kernel is a stand-in module
(IPython is not installed here), recording what the cell would show."""

from __future__ import annotations

import logging
import sys
import types

import pytest

import sparkmice
from sparkmice import progress
from sparkmice.datasets import load_nhanes
from sparkmice.progress import ProgressPrinter, ProgressWriter, notebook_bar
from sparkmice.sampler import SweepReport


class Handle:
    def __init__(self, shown: list[str]):
        self.shown = shown

    def update(self, obj) -> None:
        self.shown.append(obj.data)


def fake_ipython(monkeypatch, kernel: bool = True) -> list[str]:
    """Install a stand-in IPython whose shell has a kernel (a notebook) or not (a
    terminal); returns the list of HTML the cell shows, first display then updates."""
    shown: list[str] = []
    shell = types.SimpleNamespace(kernel=object()) if kernel else types.SimpleNamespace()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    display = types.ModuleType("IPython.display")
    display.HTML = lambda data: types.SimpleNamespace(data=data)

    def show(obj, display_id=False):
        shown.append(obj.data)
        return Handle(shown) if display_id else None

    display.display = show
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    monkeypatch.delenv("SPARKMICE_PROGRESS", raising=False)
    return shown


def sweep_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if " iteration " in r.getMessage()]


def test_a_notebook_shows_one_bar_and_no_sweep_lines(monkeypatch, caplog):
    shown = fake_ipython(monkeypatch)
    with caplog.at_level(logging.INFO, logger="sparkmice"):
        sparkmice.mice(load_nhanes(), m=2, maxit=3)
    assert len(shown) == 1 + 6  # shown once, then updated after each of 2 × 3 sweeps
    assert "0/6 sweeps, 0/2 chains done" in shown[0] and "starting" in shown[0]
    assert "3/6 sweeps, 1/2 chains done" in shown[3] and "s left" in shown[3]
    assert "6/6 sweeps, 2/2 chains done" in shown[-1] and shown[-1].endswith("done</span></div>")
    assert '<progress value="6" max="6"' in shown[-1]
    assert sweep_lines(caplog) == []
    assert progress._bar is None  # the bar ends with the run


@pytest.mark.parametrize("where", ["batch", "terminal", "opted out"])
def test_batch_jobs_and_terminals_keep_the_log_lines(monkeypatch, caplog, where):
    shown = [] if where == "batch" else fake_ipython(monkeypatch, kernel=where != "terminal")
    if where == "batch":
        monkeypatch.delitem(sys.modules, "IPython", raising=False)
    if where == "opted out":
        monkeypatch.setenv("SPARKMICE_PROGRESS", "log")
    with caplog.at_level(logging.INFO, logger="sparkmice"):
        sparkmice.mice(load_nhanes(), m=2, maxit=2)
    assert shown == []
    assert len(sweep_lines(caplog)) == 4
    assert sweep_lines(caplog)[0].startswith("chain 1 iteration 1 done in")


def test_the_time_left_is_the_pace_so_far(monkeypatch):
    shown = fake_ipython(monkeypatch)
    clock = iter([100.0, 100.0, 110.0, 130.0])  # start, first display, two sweeps
    monkeypatch.setattr(progress, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    with notebook_bar({1: 2, 2: 2}) as bar:
        assert bar is not None
        bar.update(SweepReport(1, 1, 10.0, [], [], 0))  # 1 of 4 in 10 s: 30 s left
        bar.update(SweepReport(2, 1, 20.0, [], [], 0))  # 2 of 4 in 30 s: 30 s left
    assert "1/4 sweeps, 0/2 chains done, 10 s, 30 s left" in shown[1]
    assert "2/4 sweeps, 0/2 chains done, 30 s, 30 s left" in shown[2]


def test_the_spark_engines_progress_folder_feeds_the_bar(monkeypatch, tmp_path, caplog):
    """Spark runs announce the sweeps their tasks write to the progress folder (polled by
    ProgressPrinter): each once, on the bar."""
    shown = fake_ipython(monkeypatch)
    uri = str(tmp_path / "progress")
    writer = ProgressWriter(uri)
    with caplog.at_level(logging.INFO, logger="sparkmice"), notebook_bar({3: 2}):
        with ProgressPrinter(uri, [3], every=60) as printer:
            writer(SweepReport(3, 1, 0.5, [], [], 2))
            printer.poll()
            printer.poll()  # seen once only
            writer(SweepReport(3, 2, 0.5, [], [], 2))
    assert len(shown) == 3 and "2/2 sweeps, 1/1 chains done" in shown[-1]
    assert sweep_lines(caplog) == []
