"""`sparkmice report --imputed DIR` alone (issue 14): the report rebuilds the original data
from the run's record of imputed cells, so the observed-vs-imputed plots and the
missing-data pattern need nothing but the run, and equal those drawn from the given
original. In-process runs on R mice's nhanes; no Spark (the job reduces with pandas below
PANDAS_ROWS imputed rows)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import sparkmice
from sparkmice.cli import main
from sparkmice.datasets import load_nhanes
from sparkmice.diagnostics.report import REBUILT, build_report

TABLES = ("histograms", "levels", "md_pattern", "flux", "fraction_missing")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("alone") / "run")
    sparkmice.mice(load_nhanes(), m=3, maxit=3, seed=2, output=out)
    return out


def test_the_report_alone_draws_every_section_as_with_the_original(run_dir):
    alone = build_report(run_dir)
    given = build_report(run_dir, original=load_nhanes())
    assert set(alone.figures) == set(given.figures) == {
        "trace", "density", "proportions", "pattern", "flux",
    }  # fmt: skip
    for name in TABLES:
        pd.testing.assert_frame_equal(alone.tables[name], given.tables[name])
    assert "rebuilt from the run" in alone.html and REBUILT not in given.html
    assert "Pass the original data" not in alone.html


def test_the_command_alone_writes_the_whole_report(run_dir, tmp_path, capsys):
    html = tmp_path / "report.html"
    assert main(["report", "--imputed", run_dir, "--output", str(html)]) == 0
    text = html.read_text(encoding="utf-8")
    assert 'alt="missing-data pattern"' in text and 'alt="densities"' in text
    assert 'alt="level proportions"' in text and "Pass the original data" not in text
    assert "Wrote" in capsys.readouterr().out


def test_a_run_without_its_record_reports_as_before(run_dir, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    shutil.rmtree(old / "_sparkmice" / "where")
    report = build_report(old)
    assert set(report.figures) == {"trace"}
    assert "Pass the original data" in report.html
