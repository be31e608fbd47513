"""A synthetic imputed run in the engine's output layout, for the diagnostics tests.

DIR/_imputation=k/part-00000.parquet (k = 1..m: original columns + _row_id) and
DIR/_sparkmice/{config.json, trace.csv, events.csv, timings.csv}. Missing cells are filled
with random observed values (method "sample"), which is all the diagnostics need.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

LEVELS = {"hyp": [0, 1], "region": ["north", "south", "east"]}
KINDS = {
    "age": "continuous",
    "bmi": "continuous",
    "chl": "continuous",
    "hyp": "binary",
    "region": "nominal",
}
METHODS = {"age": "", "bmi": "pmm", "chl": "norm", "hyp": "logreg", "region": "polyreg"}


def make_original(n: int = 400, seed: int = 1) -> pd.DataFrame:
    """An incomplete table: age complete; bmi, chl, hyp, region about 30% missing."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 80, n)
    frame = pd.DataFrame(
        {
            "age": age.astype(np.int64),
            "bmi": np.round(22 + 0.08 * age + rng.normal(0, 3, n), 1),
            "chl": np.round(150 + age + rng.normal(0, 25, n), 0),
            "hyp": pd.array((rng.random(n) < 0.2 + age / 200).astype(int), dtype="Int64"),
            "region": rng.choice(LEVELS["region"], n).astype(object),
        }
    )
    for name in ["bmi", "chl", "hyp", "region"]:
        frame.loc[rng.random(n) < 0.3, name] = None
    frame.loc[: n // 10, ["bmi", "chl"]] = None  # a shared pattern
    return frame


def write_run(
    root: Path,
    original: pd.DataFrame,
    m: int = 3,
    maxit: int = 10,
    seed: int = 2,
    stuck: tuple[str, ...] = (),
) -> Path:
    """Write an imputed run of ``original`` under ``root``; return DIR.

    Variables in ``stuck`` get traces whose chains sit at different levels (R-hat >> 1).
    """
    rng = np.random.default_rng(seed)
    out = Path(root)
    incomplete = [c for c in original.columns if original[c].isna().any()]
    for k in range(1, m + 1):
        filled = original.copy()
        for name in incomplete:
            holes = filled[name].isna().to_numpy()
            donors = original[name].dropna().to_numpy()
            filled.loc[holes, name] = rng.choice(donors, holes.sum())
        filled["_row_id"] = np.arange(len(filled), dtype=np.int64)
        part = out / f"_imputation={k}"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pandas(filled, preserve_index=False), part / "part-00000.parquet"
        )
    meta = out / "_sparkmice"
    meta.mkdir(exist_ok=True)
    variables = [
        {
            "name": c,
            "kind": KINDS[c],
            "levels": LEVELS.get(c),
            "method": METHODS[c],
            "n_missing": int(original[c].isna().sum()),
        }
        for c in original.columns
    ]
    predictors = {c: [p for p in original.columns if p != c] for c in incomplete}
    config = {
        "m": m,
        "maxit": maxit,
        "seed": seed,
        "engine": "synthetic",
        "variables": variables,
        "predictor_matrix": predictors,
        "visit_sequence": incomplete,
    }
    (meta / "config.json").write_text(json.dumps(config, indent=2))
    rows = []
    for chain in range(1, m + 1):
        for name in incomplete:
            offset = 3.0 * chain if name in stuck else 0.0
            for it in range(1, maxit + 1):
                rows.append(
                    {
                        "chain": chain,
                        "iteration": it,
                        "variable": name,
                        "mean": 10 + offset + rng.normal(),
                        "sd": 2 + 0.1 * rng.normal(),
                    }
                )
    pd.DataFrame(rows).to_csv(meta / "trace.csv", index=False)
    pd.DataFrame(
        [
            {
                "chain": 1,
                "iteration": 1,
                "variable": "chl",
                "event": "dropped_predictor",
                "detail": "bmi: |r| >= 0.99 with chl",
            },
            {
                "chain": 2,
                "iteration": 3,
                "variable": "hyp",
                "event": "augmented",
                "detail": "<separation> & pseudo-rows",
            },
        ]
    ).to_csv(meta / "events.csv", index=False)
    timings = [
        {"chain": c, "iteration": i, "seconds": 0.5 + 0.01 * i}
        for c in range(1, m + 1)
        for i in range(1, maxit + 1)
    ]
    pd.DataFrame(timings).to_csv(meta / "timings.csv", index=False)
    return out
