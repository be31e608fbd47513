"""Render the diagnostics report of a synthetic run and screenshot it with headless Chromium.

    python benchmarks/report_check.py [--out out/report_check] [--spark]

Writes OUT/report.html and OUT/report.png (a full-page screenshot taken offline: Chromium
runs with networking features off, so a report that needed the network would show broken
images). Needs Debian's ``chromium`` (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "diagnostics")]

import diag_synthetic  # noqa: E402
import pandas as pd  # noqa: E402

from sparkmice.diagnostics import build_report  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]
POOLED = pd.DataFrame(
    {
        "term": ["(Intercept)", "age", "hyp"],
        "estimate": [20.12, 0.081, 1.3],
        "std_error": [1.21, 0.021, 0.9],
        "df": [30.5, 41.2, 12.0],
        "fmi": [0.21, 0.18, 0.62],
    }
)


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 9000) -> None:
    """Screenshot ``page`` to ``png`` with headless Chromium and a fresh profile."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/report_check", help="output directory")
    parser.add_argument("--spark", action="store_true", help="aggregate with local Spark")
    args = parser.parse_args()
    out = Path(args.out)
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    original = diag_synthetic.make_original(n=2000)
    diag_synthetic.write_run(run_dir, original, m=5, maxit=20, stuck=("chl",))
    if args.spark:
        from sparkmice.session import get_spark

        original = get_spark(master="local[2]").createDataFrame(original)
    report = build_report(run_dir, original=original, pooled=POOLED)
    page = report.write(out / "report.html")
    screenshot(page, out / "report.png")
    print(f"Wrote {page} and {out / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
