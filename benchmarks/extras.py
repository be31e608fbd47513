"""Extra measurements for the closing notes of the engine issues (not part of run.py):

- per-step engine: seconds per variable step (m=1, maxit=2) beside the barrier engine's;
- Firth's cost per sweep against augmentation (in-process, one core, 10^6 rows);
- resuming: a run stopped after sweep 3 of 6 and resumed, against an unbroken run.

Usage: python benchmarks/extras.py [perstep|firth|resume] ROWS
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

import sparkmice  # noqa: E402
from sparkmice.datasets import make_mar  # noqa: E402


def data_path(rows: int) -> str:
    path = HERE / "data" / f"mar_n{rows}_seed1.parquet"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        make_mar(rows, seed=1).to_parquet(path, index=False)
    return str(path)


def per_step(rows: int) -> None:
    from sparkmice.session import get_spark

    spark = get_spark("local[2]")
    spark.range(10).count()
    for engine in ("barrier", "perstep"):
        t = time.perf_counter()
        imp = sparkmice.mice(
            spark.read.parquet(data_path(rows)), m=1, maxit=2, seed=1, engine=engine
        )
        total = time.perf_counter() - t
        steps = len(imp.visit_sequence)
        sweep = imp.timings["seconds"].mean()
        print(
            f"{engine} rows={rows} m=1 maxit=2 total_s={total:.1f} sweep_s={sweep:.2f} "
            f"step_s={sweep / steps:.3f} exchanges/sweep={imp.timings.exchanges.mean():.0f}"
        )


def firth(rows: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    d = pd.read_parquet(data_path(rows))
    for separation in ("augment", "firth"):
        imp = sparkmice.mice(d, m=1, maxit=3, seed=1, separation={"smoke": separation})
        print(f"{separation} rows={rows} sweep seconds {imp.timings.seconds.round(2).tolist()}")


def resume(rows: int) -> None:
    from sparkmice.session import get_spark

    spark = get_spark("local[2]")
    spark.range(10).count()
    df = spark.read.parquet(data_path(rows))
    out = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    sparkmice.mice(df, m=2, maxit=6, seed=1, output=str(out / "a"))
    unbroken = time.perf_counter() - t
    sparkmice.mice(df, m=2, maxit=3, seed=1, output=str(out / "b"))
    t = time.perf_counter()
    sparkmice.mice(df, m=2, maxit=6, seed=1, output=str(out / "b"), resume=True)
    resumed = time.perf_counter() - t
    same = sparkmice.read_imputed(str(out / "a")).equals(sparkmice.read_imputed(str(out / "b")))
    print(
        f"rows={rows} m=2 unbroken maxit=6: {unbroken:.1f} s; resume from sweep 3 to 6: "
        f"{resumed:.1f} s; identical: {same}"
    )
    shutil.rmtree(out)


if __name__ == "__main__":
    {"perstep": per_step, "firth": firth, "resume": resume}[sys.argv[1]](int(float(sys.argv[2])))
