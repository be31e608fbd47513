"""What Spark's Python workers import: the modules whose functions the engines, the plan's
summaries and the analysis fit send to the tasks. A fresh worker imports them before its
first task runs (on the critical path of the run's first Spark job), so packages that only
the driver needs stay out: statsmodels, scipy.stats and matplotlib (seconds of imports), and
for the engines' tasks pandas too (0.6 s; they work on Arrow and numpy)."""

from __future__ import annotations

import subprocess
import sys

import pytest

DRIVER_ONLY = ["statsmodels", "scipy.stats", "matplotlib"]
CASES = {
    "engines": (
        ["sparkmice.engines.barrier", "sparkmice.engines.perstep", "sparkmice.summaries",
         "sparkmice.predictors"],
        [*DRIVER_ONLY, "pandas"],
    ),
    "analysis": (["sparkmice.analysis.spark"], DRIVER_ONLY),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_worker_modules_do_not_import_driver_only_packages(case):
    modules, forbidden = CASES[case]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"print([m for m in {forbidden!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
