"""`with_imputations`: any analysis model on every imputation, pooled by `pool` (R mice's
`with()` + `pool()`), on sparkmice's own imputations of small simulated data (in-process)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from lifelines import CoxPHFitter
from scipy import stats

import sparkmice
from sparkmice.analysis.choice import analysis_for
from sparkmice.pooling import pool, pool_estimates, pool_scalar

M = 5


def _with_missing(df: pd.DataFrame, column: str, driver: pd.Series, seed: int) -> pd.DataFrame:
    """About 30% of `column` missing, more often where `driver` is high (MAR)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-(driver.to_numpy() - 1.0)))
    out = df.copy()
    out.loc[rng.random(len(df)) < 0.6 * p, column] = np.nan
    return out


@pytest.fixture(scope="module")
def survival_long() -> tuple[pd.DataFrame, float]:
    """Cox data: hazard exp(0.7 x - 0.5 z), exponential times, uniform censoring; x is
    MAR on z and the time. Imputed with x's model on z, time and event (pmm)."""
    rng = np.random.default_rng(11)
    n = 400
    x, z = rng.normal(size=n), rng.integers(0, 2, n).astype(float)
    event_time = rng.exponential(1.0 / np.exp(0.7 * x - 0.5 * z))
    censor = rng.uniform(0.0, 3.0, n)
    df = pd.DataFrame({
        "x": x, "z": z, "time": np.minimum(event_time, censor),
        "event": (event_time <= censor).astype(float),
    })  # fmt: skip
    df = _with_missing(df, "x", df["z"] + np.log(df["time"]), seed=12)
    imp = sparkmice.mice(df, m=M, maxit=3, seed=13)
    return imp.complete("long"), 0.7


def _cox(d: pd.DataFrame) -> CoxPHFitter:
    return CoxPHFitter().fit(d[["x", "z", "time", "event"]], "time", "event")


def test_cox_pooled_log_hazard_ratios(survival_long) -> None:
    long, truth = survival_long
    fits = sparkmice.with_imputations(long, _cox)
    assert fits.terms == ("x", "z") and fits.imputations == tuple(range(1, M + 1))
    # per imputation, exactly the model fitted by hand on that imputation
    for i, k in enumerate(fits.imputations):
        direct = _cox(long[long["_imputation"] == k].sort_values("_row_id"))
        np.testing.assert_allclose(fits.estimates[i], direct.params_.to_numpy(), rtol=1e-10)
        np.testing.assert_allclose(fits.covariances[i], direct.variance_matrix_.to_numpy(),
                                   rtol=1e-10)  # fmt: skip
    table = pool(fits)
    assert fits.dfcom == len(long) / M - 2  # R mice's get.dfcom for coxph: n - p
    # the same table from the list of fitted models (R: pool(as.mira(list)))
    frames = [long[long["_imputation"] == k] for k in fits.imputations]
    listed = pool([_cox(d.sort_values("_row_id")) for d in frames])
    np.testing.assert_allclose(listed["estimate"], table["estimate"], rtol=1e-12)
    x = table.set_index("term").loc["x"]
    # the truth within 4 pooled SEs (a 6e-5 chance of failing for an unbiased estimate)
    assert abs(x["estimate"] - truth) < 4 * x["std_error"]
    assert x["b"] > 0 and 0 < x["fmi"] < 1


def test_mixed_model_pools_fixed_effects() -> None:
    """Random intercepts per group; x MAR on y. Pools Intercept and x (R: lmer fixed effects)."""
    rng = np.random.default_rng(21)
    groups, per = 30, 12
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=groups * per)
    y = 1.0 + 0.5 * x + rng.normal(0.0, 0.8, groups)[g] + rng.normal(size=len(g))
    df = _with_missing(pd.DataFrame({"y": y, "x": x, "g": g.astype(float)}), "x", pd.Series(y), 22)
    long = sparkmice.mice(df, m=M, maxit=3, seed=23).complete("long")

    def mixed(d: pd.DataFrame):
        return smf.mixedlm("y ~ x", d, groups=d["g"]).fit(reml=True)

    fits = sparkmice.with_imputations(long, mixed)
    assert fits.terms == ("Intercept", "x")  # not the group variance
    first = mixed(long[long["_imputation"] == 1].sort_values("_row_id").reset_index(drop=True))
    np.testing.assert_allclose(fits.estimates[0], first.fe_params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(fits.covariances[0])), first.bse_fe, rtol=1e-8)
    assert fits.dfcom == groups * per - 2
    x_row = pool(fits).set_index("term").loc["x"]
    assert abs(x_row["estimate"] - 0.5) < 4 * x_row["std_error"]


def test_pooled_mean_is_pool_scalar() -> None:
    """A mean with its variance s^2/n and dfcom n - 1: pool() agrees with pool_scalar(n, k=1)."""
    rng = np.random.default_rng(31)
    n = 300
    df = pd.DataFrame({"y": rng.normal(2.0, 1.0, n), "w": rng.normal(size=n)})
    df["y"] += 0.8 * df["w"]
    df = _with_missing(df, "y", df["w"], 32)
    long = sparkmice.mice(df, m=M, maxit=3, seed=33).complete("long")
    fits = sparkmice.with_imputations(
        long, lambda d: (d["y"].mean(), d["y"].var() / len(d), len(d) - 1)
    )
    row = pool(fits).iloc[0]
    scalar = pool_scalar(fits.estimates[:, 0], fits.variances[:, 0], n=n, k=1)
    assert row["term"] == "x1" and fits.dfcom == n - 1
    np.testing.assert_allclose(
        [row["estimate"], row["t"], row["df"], row["fmi"]],
        [scalar.qbar, scalar.t, scalar.df, scalar.fmi], rtol=1e-12,
    )  # fmt: skip
    means = long.groupby("_imputation")["y"].mean().to_numpy()
    np.testing.assert_allclose(scalar.qhat, means, rtol=1e-12)
    assert scalar.b > 0  # the imputations differ: between-imputation variance is there


def _auc_logit(d: pd.DataFrame) -> tuple[float, float, float]:
    """AUC of score x for outcome y on the logit scale, with the Hanley-McNeil (1982)
    variance carried by the delta method: var(logit A) = var(A) / (A (1 - A))^2."""
    pos, neg = d.loc[d["y"] == 1, "x"].to_numpy(), d.loc[d["y"] == 0, "x"].to_numpy()
    auc = stats.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (len(pos) - 1) * (q1 - auc**2)
           + (len(neg) - 1) * (q2 - auc**2)) / (len(pos) * len(neg))  # fmt: skip
    return float(np.log(auc / (1 - auc))), float(var / (auc * (1 - auc)) ** 2), np.inf


def test_pooled_auc_on_the_logit_scale() -> None:
    """Binormal score: x | y=1 ~ N(1, 1), x | y=0 ~ N(0, 1), so AUC = Phi(1/sqrt 2)."""
    rng = np.random.default_rng(41)
    n = 500
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({"y": y.astype(float), "x": rng.normal(size=n) + y})
    df = _with_missing(df, "x", pd.Series(2.0 * y), 42)
    long = sparkmice.mice(df, m=M, maxit=3, seed=43).complete("long")
    fits = sparkmice.with_imputations(long, _auc_logit)
    scalar = pool_scalar(fits.estimates[:, 0], fits.variances[:, 0])  # dfcom inf
    assert np.isclose(pool(fits, dfcom=np.inf)["df"].iloc[0], scalar.df, rtol=1e-12)
    half = stats.t.ppf(0.975, scalar.df) * np.sqrt(scalar.t)
    low, high = (1.0 / (1.0 + np.exp(-v)) for v in (scalar.qbar - half, scalar.qbar + half))
    truth = stats.norm.cdf(1.0 / np.sqrt(2.0))
    assert low < truth < high  # a 95% interval from a fixed seed: fails 1 time in 20 if drawn
    assert 0.5 < low and high < 1.0  # back on the AUC scale, inside (0.5, 1)


def test_refused_analyses_name_what_to_return() -> None:
    long = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "_imputation": [1, 1, 2, 2]})
    with pytest.raises(ValueError, match="return a statsmodels results object"):
        sparkmice.with_imputations(long, lambda d: d["y"].mean())
    with pytest.raises(ValueError, match="tuple of 2 items; return"):
        sparkmice.with_imputations(long, lambda d: (1.0, 2.0))
    with pytest.raises(ValueError, match="has no '_imputation' column"):
        sparkmice.with_imputations(long.drop(columns="_imputation"), lambda d: (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="imputation 2's analysis has terms"):
        sparkmice.with_imputations(
            long, lambda d: (pd.Series([1.0], index=[f"t{d['y'].iloc[0]}"]), 1.0, 1.0)
        )


def test_pooling_a_list_equals_pooling_arrays() -> None:
    """pool(list of tuples) is pool_estimates of the stacked arrays."""
    rng = np.random.default_rng(51)
    q, v = rng.normal(size=(4, 2)), rng.uniform(0.5, 1.0, (4, 2))
    listed = pool([(q[i], np.diag(v[i]), 50.0) for i in range(4)])
    direct = pool_estimates(q, v, 50.0)
    pd.testing.assert_frame_equal(listed, direct)


def test_cli_models_fit_what_lifelines_and_statsmodels_fit(survival_long) -> None:
    """analysis_for builds the design itself (formulaic, fixed spec) and hands numbers over:
    the same fit as lifelines and statsmodels on the columns by hand."""
    long, _ = survival_long
    one = long[long["_imputation"] == 2].sort_values("_row_id").reset_index(drop=True)
    cox = analysis_for("cox", long, "~ x + C(z)", duration="time", event="event")(one)
    by_hand = CoxPHFitter().fit(one[["x", "z", "time", "event"]], "time", "event")
    assert list(cox.params_.index) == ["x", "C(z)[T.1.0]"]
    np.testing.assert_allclose(cox.params_.to_numpy(), by_hand.params_.to_numpy(), rtol=1e-10)
    mixed = analysis_for("mixedlm", long, "x ~ time", groups="z")(one)
    direct = smf.mixedlm("x ~ time", one, groups=one["z"]).fit(reml=True)
    np.testing.assert_allclose(mixed.fe_params.to_numpy(), direct.fe_params.to_numpy(),
                               rtol=1e-6)  # fmt: skip
    assert list(mixed.fe_params.index) == ["Intercept", "time"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "cox", "--formula", "~ x"], "--model cox needs --duration and --event"),
        (["--model", "cox", "--formula", "time ~ x", "--duration", "time", "--event", "e"],
         "takes the covariates only"),
        (["--model", "mixedlm", "--formula", "y ~ x"], "--model mixedlm needs --groups"),
        (["--model", "mixedlm", "--formula", "y ~ x", "--groups", "g", "--event", "e"],
         "--event applies to another --model"),
        (["--model", "mixedlm", "--formula", "y ~ x", "--groups", "g", "--family", "binomial"],
         "--family applies to --model glm"),
        # a refused formula, built so that test_formula's scan (formulas meant to pass) skips it
        (["--model", "cox", "--formula", "~ " + "I(__import__('os'))", "--duration", "t",
          "--event", "e"], "is a name with '__'"),
    ],
)  # fmt: skip
def test_cli_refuses_a_model_without_its_options(argv, message, capsys, tmp_path) -> None:
    """One line naming the option, exit code 2, before any Spark session starts."""
    from sparkmice.cli import main

    code = main(["pool", "--imputed", str(tmp_path), "--output", str(tmp_path / "p.csv"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
