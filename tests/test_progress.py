"""sparkmice/progress.py: one JSON file per finished sweep, read back in order (the trace,
events and timings of the run folder come from them), and the driver's line per sweep,
logged once however often the folder is polled."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sparkmice import progress
from sparkmice.io.run import read_reports, tables_of
from sparkmice.progress import ProgressPrinter, ProgressWriter, describe
from sparkmice.sampler import SweepReport


def report(chain: int, iteration: int, **changes) -> SweepReport:
    fields = {
        "chain": chain,
        "iteration": iteration,
        "seconds": 0.25 * iteration,
        "trace": [
            {"chain": chain, "iteration": iteration, "variable": "x", "mean": 1.5, "sd": 0.5}
        ],
        "events": [],
        "exchanges": 3 * iteration,
        "warm_start": {"2": [0.1, -0.2]},
    }
    return SweepReport(**{**fields, **changes})


def test_each_sweep_is_one_json_file_holding_the_whole_report(tmp_path):
    writer = ProgressWriter(str(tmp_path / "progress"))
    writer(report(2, 7))
    files = sorted(p.name for p in (tmp_path / "progress").iterdir())
    assert files == ["chain_2_sweep_00007.json"]  # nothing else left (atomic write)
    saved = json.loads((tmp_path / "progress" / files[0]).read_text())
    assert SweepReport(**saved) == report(2, 7)


def test_reports_come_back_by_chain_then_iteration_and_for_the_chains_asked(tmp_path):
    uri = str(tmp_path / "progress")
    writer = ProgressWriter(uri)
    for chain, iteration in [(2, 1), (1, 10), (1, 2), (2, 3), (1, 1)]:
        writer(report(chain, iteration))
    order = [(r["chain"], r["iteration"]) for r in read_reports(uri)]
    assert order == [(1, 1), (1, 2), (1, 10), (2, 1), (2, 3)]
    assert [r["iteration"] for r in read_reports(uri, [2])] == [1, 3]
    assert read_reports(str(tmp_path / "none")) == []


def test_a_rewritten_sweep_replaces_its_report(tmp_path):
    uri = str(tmp_path / "progress")
    writer = ProgressWriter(uri)
    writer(report(1, 1, seconds=9.0))
    writer(report(1, 1, seconds=1.0))
    assert [r["seconds"] for r in read_reports(uri)] == [1.0]


def test_the_run_tables_come_from_the_reports(tmp_path):
    uri = str(tmp_path / "progress")
    writer = ProgressWriter(uri)
    event = {"chain": 1, "iteration": 2, "variable": "x", "event": "ridge", "detail": "1e-05"}
    writer(report(1, 1))
    writer(report(1, 2, events=[event]))
    tables = tables_of(read_reports(uri))
    assert tables["trace"].to_dict("records") == [
        {"chain": 1, "iteration": it, "variable": "x", "mean": 1.5, "sd": 0.5} for it in (1, 2)
    ]
    assert tables["events"].to_dict("records") == [event]
    assert tables["timings"].to_dict("records") == [
        {"chain": 1, "iteration": 1, "seconds": 0.25, "exchanges": 3},
        {"chain": 1, "iteration": 2, "seconds": 0.5, "exchanges": 6},
    ]


def test_describe_says_chain_iteration_seconds_and_exchanges():
    text = describe(report(3, 4, seconds=1.234, exchanges=12))
    assert text == "chain 3 iteration 4 done in 1.23 s (12 exchanges)"


def test_the_printer_logs_each_sweep_of_its_chains_once(tmp_path, caplog):
    uri = str(tmp_path / "progress")
    writer = ProgressWriter(uri)
    printer = ProgressPrinter(uri, chains=[1], every=60.0)
    caplog.set_level(logging.INFO, logger="sparkmice")
    writer(report(1, 1))
    writer(report(2, 1))  # another chain: not this printer's
    printer.poll()
    printer.poll()
    writer(report(1, 2))
    with printer:  # the thread polls (every 60 s: not before the exit's last poll)
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "sparkmice"]
    assert lines == [describe(report(1, 1)), describe(report(1, 2))]


@pytest.fixture
def bare_logger(monkeypatch):
    """The sparkmice logger without handlers, and a function that takes the root logger's
    away (pytest adds its own to the root when the test starts); all restored afterwards."""
    logger = logging.getLogger("sparkmice")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    return logger, lambda: monkeypatch.setattr(logging.getLogger(), "handlers", [])


def test_logging_is_shown_only_when_the_application_set_none(bare_logger):
    bare_logger, no_root_handlers = bare_logger
    no_root_handlers()
    progress.ensure_logging()
    assert len(bare_logger.handlers) == 1 and bare_logger.level == logging.INFO
    assert bare_logger.propagate is False
    progress.ensure_logging()  # once only
    assert len(bare_logger.handlers) == 1


def test_an_application_handler_is_left_alone(bare_logger):
    bare_logger, no_root_handlers = bare_logger
    no_root_handlers()
    logging.getLogger().handlers.append(logging.NullHandler())
    progress.ensure_logging()
    assert bare_logger.handlers == [] and bare_logger.level == logging.NOTSET


def test_the_writer_creates_its_folder_on_any_path(tmp_path):
    uri = (tmp_path / "deep" / "er" / "progress").as_uri()  # file:// URI
    ProgressWriter(uri)(report(1, 1))
    assert Path(tmp_path / "deep" / "er" / "progress" / "chain_1_sweep_00001.json").is_file()
