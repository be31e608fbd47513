"""Issue 14 on Spark, through the command line and the API: R mice's arguments in a YAML
config (a named visit sequence, post, the old option name `blocks` with one warning line),
complete()'s shapes and where() as Spark DataFrames (equal to the pandas route over the
same run folder), and `sparkmice report --imputed DIR` alone on a Spark run. One barrier run
on R mice's nhanes (25 rows) serves every test; the suite's Spark session."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.cli import main
from sparkmice.datasets import load_nhanes
from sparkmice.diagnostics.report import build_report
from sparkmice.io.run import RunFolder
from sparkmice.names import IMPUTATION, ROW_ID

pytestmark = pytest.mark.spark
NHANES = str(Path(sparkmice.__file__).parent / "data" / "nhanes.csv")
CONFIG = """\
m: 2
maxit: 2
seed: 3
blocks: 2                     # the old name of row_blocks
visit_sequence: monotone
post:
  chl: {squeeze: [150, 200]}
"""


@pytest.fixture(scope="module")
def impute_run(spark, tmp_path_factory) -> tuple[str, str]:
    """`sparkmice impute` of nhanes.csv with the config above (barrier engine): the run
    folder and what the command wrote to stderr."""
    root = tmp_path_factory.mktemp("pipeline")
    (root / "run.yaml").write_text(CONFIG)
    out, err = str(root / "run"), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["impute", "--input", NHANES, "--output", out, "--config",
                     str(root / "run.yaml")])  # fmt: skip
    assert code == 0
    return out, err.getvalue()


@pytest.fixture(scope="module")
def run_dir(impute_run) -> str:
    return impute_run[0]


def _stored(run_dir: str, spark=None) -> sparkmice.MiceResult:
    """The run as a result read from its folder: Spark DataFrames if `spark`, else pandas."""
    config = RunFolder(run_dir).read_config()
    imp = sparkmice.mice(load_nhanes(), m=2, maxit=1, row_blocks=2)  # the same plan's shape
    assert imp.plan.n_blocks == config["n_blocks"]
    return sparkmice.MiceResult(
        imp.plan, config["engine"], run_dir, imp.trace, imp.logged_events, imp.timings,
        spark=spark,
    )  # fmt: skip


def test_the_config_reaches_the_run_with_one_warning_line(impute_run):
    out, stderr = impute_run
    err = [line for line in stderr.splitlines() if "warning" in line.lower()]
    assert err == [
        "sparkmice impute: warning: The 'blocks' option is now called 'row_blocks' (it counts "
        "row blocks, not R mice's blocks of variables); 'blocks' still works for now: rename "
        "it in your config."
    ]
    config = json.loads(Path(out, "_sparkmice", "config.json").read_text())
    assert config["engine"] == "barrier"
    assert config["visit_sequence"] == ["hyp", "bmi", "chl"]  # monotone: 8, 9, 10 missing
    assert config["n_blocks"] == 2 and config["config"]["row_blocks"] == 2
    long = sparkmice.read_imputed(out)
    nhanes = load_nhanes()
    imputed = pd.concat([nhanes["chl"].isna()] * 2, ignore_index=True).to_numpy()
    order = long.sort_values([IMPUTATION, ROW_ID])
    assert order["chl"].to_numpy()[imputed].min() >= 150
    assert order["chl"].to_numpy()[imputed].max() <= 200


@pytest.mark.parametrize(
    "action", [("long", True, True), ("all", False, False), ("broad", True, True),
               ("repeated", False, True)],
)  # fmt: skip
def test_spark_shapes_equal_the_pandas_ones(spark, run_dir, action):
    action, include, indicator = action
    on_spark = _stored(run_dir, spark).complete(action, include=include, indicator=indicator)
    on_pandas = _stored(run_dir).complete(action, include=include, indicator=indicator)
    frames = on_spark if isinstance(on_spark, list) else [on_spark]
    wanted = on_pandas if isinstance(on_pandas, list) else [on_pandas]
    assert len(frames) == len(wanted)
    for got, want in zip(frames, wanted, strict=True):
        got = got.toPandas()
        assert list(got.columns) == list(want.columns)
        keys = [c for c in (IMPUTATION, ROW_ID) if c in got]
        got = got.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_spark_where_and_original_are_the_inputs(spark, run_dir):
    stored = _stored(run_dir, spark)
    where = stored.where().toPandas().sort_values(ROW_ID)
    nhanes = load_nhanes()
    assert list(where.columns) == [ROW_ID, "bmi", "hyp", "chl"]
    # the CSV's row ids follow its one partition's order: row i is nhanes' row i
    filled = ["bmi", "hyp", "chl"]
    np.testing.assert_array_equal(where[filled], nhanes[filled].isna())
    original = stored.complete(0).toPandas().sort_values(ROW_ID).reset_index(drop=True)
    pd.testing.assert_frame_equal(original.drop(columns=[ROW_ID]), nhanes, check_dtype=False)


def test_the_report_alone_on_a_spark_run(spark, run_dir, tmp_path):
    html = tmp_path / "report.html"
    assert main(["report", "--imputed", run_dir, "--output", str(html)]) == 0
    text = html.read_text(encoding="utf-8")
    assert 'alt="missing-data pattern"' in text and 'alt="densities"' in text
    on_spark = build_report(run_dir, spark=spark)  # rebuilt with Spark joins
    given = build_report(run_dir, original=load_nhanes())
    assert set(on_spark.figures) == set(given.figures)
    for name in ("histograms", "levels", "md_pattern", "flux"):
        pd.testing.assert_frame_equal(
            on_spark.tables[name], given.tables[name], check_dtype=False
        )
