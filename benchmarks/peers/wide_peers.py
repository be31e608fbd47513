"""Peers on the wide reference workload (issue 12): the files they read and the comparison
of their pooled fits with the truth. Runs in the project's venv (sparkmice, statsmodels).

    python benchmarks/peers/wide_peers.py csv --rows 1e4
        # generate wide_n10000_seed1.parquet if needed and write its CSV copy for R
    python benchmarks/peers/wide_peers.py pool-frames DIR --rows 1e4
        # OLS of the truth's formula on each completed frame DIR/imp*.parquet (miceforest's),
        # pooled by sparkmice.pool (Rubin's rules), against the truth
    python benchmarks/peers/wide_peers.py compare POOLED.csv --rows 1e4
        # a pooled table (term, estimate, std_error; R's, from wide_mice.R) against the truth

`pool-frames` and `compare` print one JSON object: per term of the truth the pooled estimate,
its SE and (estimate - truth) / SE.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import wide  # noqa: E402  (benchmarks/wide.py, beside this folder)


def csv_copy(rows: int, seed: int) -> Path:
    """wide_n<rows>_seed<seed>.csv beside the parquet: missing cells empty, o1..o4 integers."""
    path = wide.generate(rows, seed)
    out = path.with_suffix(".csv")
    if not out.exists():
        pd.read_parquet(path).to_csv(out, index=False, na_rep="NA")
    return out


def against_truth(pooled: pd.DataFrame, truth: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per truth term: estimate, SE, (estimate - truth) / SE (missing terms: NaN)."""
    pooled = pooled.set_index("term")
    result = {}
    for term, value in truth.items():
        if term in pooled.index:
            est, se = float(pooled.at[term, "estimate"]), float(pooled.at[term, "std_error"])
            result[term] = {"estimate": round(est, 4), "se": round(se, 4),
                            "z": round((est - value) / se, 2)}  # fmt: skip
        else:
            result[term] = {"estimate": float("nan"), "se": float("nan"), "z": float("nan")}
    return result


def truth_of(rows: int, seed: int) -> dict:
    return json.loads(wide.data_path(rows, seed).with_suffix(".truth.json").read_text())


def pool_frames(folder: Path, rows: int, seed: int) -> dict:
    """OLS of the truth's formula on each completed frame, pooled by Rubin's rules."""
    import statsmodels.formula.api as smf

    import sparkmice

    truth = truth_of(rows, seed)
    files = sorted(folder.glob("imp*.parquet"))
    if not files:
        raise SystemExit(f"no imp*.parquet in {folder}")
    fits = []
    for f in files:
        frame = pd.read_parquet(f)
        frame["b01"] = frame["b01"].astype(float)
        fits.append(smf.ols(truth["formula"], data=frame).fit())
    pooled = sparkmice.pool(fits)
    return {"m": len(files), "terms": against_truth(pooled, truth["coefficients"])}


def compare(pooled_csv: Path, rows: int, seed: int) -> dict:
    truth = truth_of(rows, seed)
    return {"terms": against_truth(pd.read_csv(pooled_csv), truth["coefficients"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("csv", "pool-frames", "compare"))
    parser.add_argument("path", nargs="?")
    parser.add_argument("--rows", type=float, default=1e4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows = int(args.rows)
    if args.what == "csv":
        print(csv_copy(rows, args.seed))
    elif args.what == "pool-frames":
        print(json.dumps(pool_frames(Path(args.path), rows, args.seed), indent=1))
    else:
        print(json.dumps(compare(Path(args.path), rows, args.seed), indent=1))


if __name__ == "__main__":
    main()
