"""cart and rf against R mice 3.15's own (tests/data/reference/trees_r_mice.R made the
numbers: R mice's cart on rpart, rf on ranger, each with R mice's defaults).

Pooled estimates and pooled standard errors, averaged over seeds, on R mice's nhanes and on
a small non-linear MAR set (nonlinear_n200.csv: x and z rounded to 0.1, so every value is
its own bin and the trees split where rpart can). And the kind of imputation: every value
sparkmice's cart imputes is an observed y from the missing row's leaf of R's rpart tree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkmice

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"
CASES = {  # data set: (incomplete variables on the method, maxit, analysis), as trees_r_mice.R
    "nhanes": (["bmi", "hyp", "chl"], 5, "chl ~ age + bmi"),
    "nonlinear_n200": (["y"], 1, "y ~ x + I(x**2) + z"),
}
R_TERMS = {"(Intercept)": "Intercept", "I(x^2)": "I(x ** 2)"}
SEEDS = 20  # sparkmice's seeds per case: ~10 s on the in-process engine
Z = 4.0  # two-sided normal tail 6e-5 per comparison; 28 comparisons in all: ~2e-3


def read_data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.csv", na_values=["NA", ""], dtype="float64")


def r_reference(name: str, method: str) -> pd.DataFrame:
    ref = pd.read_csv(REFERENCE / "trees_r_mice.csv")
    ref = ref[(ref["data"] == name) & (ref["method"] == method)].copy()
    ref["term"] = ref["term"].replace(R_TERMS)
    return ref.set_index("term")


def pooled_over_seeds(name: str, method: str, seeds: int) -> pd.DataFrame:
    """The pooled estimate and standard error of every term, one row per seed and term."""
    variables, maxit, formula = CASES[name]
    data = read_data(name)
    rows = []
    for seed in range(seeds):
        imp = sparkmice.mice(
            data, m=5, maxit=maxit, seed=seed, method=dict.fromkeys(variables, method)
        )
        pooled = sparkmice.pool(sparkmice.fit_imputations(imp.complete("long"), formula))
        rows.append(pooled[["term", "estimate", "std_error"]])
    return pd.concat(rows)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("method", ["cart", "rf"])
def test_pooled_estimates_and_errors_agree_with_r_mice_within_monte_carlo_error(name, method):
    """Mean over 20 seeds of sparkmice's pooled estimate (and pooled SE) of each term against
    R mice's mean over its seeds (trees_r_mice.csv, 200 seeds). Were both the same
    procedure, the difference of the two means would be normal with SD
    sqrt(s_py^2 / 20 + s_R^2 / 200), s_py and s_R the SD over seeds of each tool's pooled
    value (s_py from these 20 seeds, s_R stored with the reference); the test allows Z = 4
    of those SDs. The SE is compared as well because it carries the between-imputation
    variance: trees draw no parameters in either tool, and the SEs show whether sparkmice's
    imputations vary as much as R's."""
    ref = r_reference(name, method)
    ours = pooled_over_seeds(name, method, SEEDS).groupby("term")
    for ours_col, r_mean, r_sd in [
        ("estimate", "mean_estimate", "sd_estimate"),
        ("std_error", "mean_std_error", "sd_std_error"),
    ]:
        mean, sd = ours[ours_col].mean(), ours[ours_col].std(ddof=1)
        assert set(mean.index) == set(ref.index)
        mc_sd = np.sqrt(sd**2 / SEEDS + ref[r_sd] ** 2 / ref["seeds"])
        gap = (mean - ref[r_mean]).abs()
        assert (gap <= Z * mc_sd).all(), pd.DataFrame(
            {"sparkmice": mean, "R": ref[r_mean], "gap/mc_sd": gap / mc_sd}
        )


def test_cart_imputes_observed_values_from_r_rparts_leaf_of_each_missing_row():
    """The same kind of imputation as R mice's cart: with every predictor value its own bin,
    sparkmice's tree is rpart's (minbucket 5, cp 1e-4), so every imputed y (5 imputations
    of the 88 missing rows) is an observed y of a row in the missing row's rpart leaf
    (trees_r_rpart_leaves.csv), and the donors vary within a leaf."""
    data = read_data("nonlinear_n200")
    leaves = pd.read_csv(REFERENCE / "trees_r_rpart_leaves.csv")
    observed = data["y"].notna().to_numpy()
    assert (leaves["observed"].to_numpy() == observed).all()
    leaf = leaves["leaf"].to_numpy()
    donors = {k: set(data["y"][observed & (leaf == k)]) for k in np.unique(leaf[observed])}
    imp = sparkmice.mice(data, m=5, maxit=1, seed=3, method={"y": "cart"})
    long = imp.complete("long")
    long = long[~observed[long["_row_id"].to_numpy()]]
    assert len(long) == 5 * (~observed).sum()
    in_leaf = [y in donors[leaf[row]] for row, y in zip(long["_row_id"], long["y"], strict=True)]
    assert all(in_leaf), f"{len(in_leaf) - sum(in_leaf)} imputations outside R's leaf"
    per_row = long.groupby("_row_id")["y"].nunique()
    assert (per_row > 1).mean() > 0.5  # different donors across the imputations
