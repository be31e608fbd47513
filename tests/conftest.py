"""Shared fixtures: one local[2] Spark session for the whole run (a JVM start costs seconds),
and a guard that fails a run in which tests were skipped or none ran."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark():
    """A local[2] Spark session; Python workers import sparkmice from this checkout."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    from sparkmice.session import get_spark

    session = get_spark(master="local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = len(terminalreporter.stats.get("skipped", []))
    if skipped:
        terminalreporter.write_line(
            f"{skipped} test(s) skipped: a skipped test does not pass; failing the run.", red=True
        )
        terminalreporter._session.exitstatus = 1
