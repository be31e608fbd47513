"""What Spark's Python workers import: the modules whose functions the engines, the plan's
summaries and the analysis fit send to the tasks. A fresh worker imports them before its
first task runs, so statsmodels, scipy.stats and matplotlib (seconds of imports, needed on
the driver only) must stay out of them."""

from __future__ import annotations

import subprocess
import sys

WORKER_MODULES = [
    "sparkmice.engines.barrier",
    "sparkmice.engines.perstep",
    "sparkmice.summaries",
    "sparkmice.predictors",
    "sparkmice.analysis.spark",
]
DRIVER_ONLY = ["statsmodels", "scipy.stats", "matplotlib"]


def test_worker_modules_do_not_import_driver_only_packages():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in WORKER_MODULES)
        + f"print([m for m in {DRIVER_ONLY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
