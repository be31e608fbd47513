"""Hard data through the whole sampler: ordered categories (polr), separation guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.config import ConfigError

LEVELS = ["none", "mild", "moderate", "severe"]


@pytest.fixture(scope="module")
def ordered_data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 3000
    x = rng.normal(size=n)
    y = np.digitize(1.2 * x + rng.logistic(size=n), [-1, 0.5, 2])
    sev = pd.Categorical(np.array(LEVELS)[y], categories=LEVELS, ordered=True)
    d = pd.DataFrame({"x": x, "sev": sev})
    d.loc[rng.random(n) < 0.3, "sev"] = None
    return d


def test_ordered_categorical_gets_polr_and_valid_levels(ordered_data):
    imp = sparkmice.mice(ordered_data, m=2, maxit=3, seed=1)
    assert imp.method["sev"] == "polr"
    assert imp.plan.variable("sev").levels == tuple(LEVELS)  # the categorical's order
    done = imp.complete("long")
    assert set(done["sev"].astype(str)) <= set(LEVELS)
    assert done["sev"].notna().all()
    # the completed column is the same ordered categorical, observed cells unchanged
    assert list(done["sev"].cat.categories) == LEVELS and done["sev"].cat.ordered
    observed = ordered_data["sev"].notna().to_numpy()
    first = done[done["_imputation"] == 1].reset_index(drop=True)
    assert (first["sev"][observed] == ordered_data["sev"][observed]).all()


def test_declared_ordered_levels(ordered_data):
    d = ordered_data.assign(sev=ordered_data["sev"].astype(object))
    imp = sparkmice.mice(d, m=1, maxit=1, kind={"sev": "ordered"}, levels={"sev": LEVELS})
    assert imp.method["sev"] == "polr" and imp.plan.variable("sev").levels == tuple(LEVELS)
    with pytest.raises(ConfigError, match=r"levels for column 'sev' miss the observed"):
        sparkmice.mice(d, m=1, maxit=1, kind={"sev": "ordered"}, levels={"sev": LEVELS[:3]})


def separated(seed: int, n: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    """b is always 1 where g == 'c' (perfect prediction of one level), else logistic in x;
    b is missing at random (30%). Returns the data and the true b."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.45, 0.45, 0.1])
    x = rng.normal(size=n)
    b = np.where(g == "c", 1.0, (rng.random(n) < 1 / (1 + np.exp(-x))).astype(float))
    d = pd.DataFrame({"x": x, "g": g, "b": b.copy()})
    d.loc[rng.random(n) < 0.3, "b"] = np.nan
    return d, b


@pytest.mark.parametrize("separation", ["augment", "ridge", "firth"])
def test_separation_guards_keep_imputations_sensible(separation):
    """Rows with g == 'c' must be imputed 1: the guard keeps the coefficient finite but
    large. Among the other missing rows the imputed share of 1s must match the true share
    within 4 binomial SEs (it is a draw from a correct model)."""
    d, truth = separated(7)
    imp = sparkmice.mice(d, m=3, maxit=3, seed=3, separation={"b": separation})
    miss = d["b"].isna().to_numpy()
    c_rows = miss & (d["g"] == "c").to_numpy()
    other = miss & ~c_rows
    for k in range(1, 4):
        done = imp.complete(k)["b"].to_numpy()
        assert np.isin(done, [0.0, 1.0]).all()
        assert done[c_rows].mean() >= 0.9
        se = np.sqrt(0.25 / other.sum())
        assert abs(done[other].mean() - truth[other].mean()) < 4 * se


def test_separation_option_only_for_logreg(ordered_data):
    with pytest.raises(ConfigError, match=r"separation is set for column 'x'"):
        sparkmice.mice(ordered_data, m=1, maxit=1, separation={"x": "firth"})
    want = r"The 'separation' option for column 'sev' must be one of"
    with pytest.raises(ConfigError, match=want):
        sparkmice.mice(ordered_data, m=1, maxit=1, separation={"sev": "lasso"})


def interaction_data(n: int, seed: int) -> pd.DataFrame:
    """logit P(y) = -0.5 + 0.5 age + 0.5 smoke + 0.8 age·smoke; smoke ~37% missing at random
    given age and y."""
    rng = np.random.default_rng(seed)
    age = rng.normal(size=n)
    smoke = (rng.random(n) < 1 / (1 + np.exp(-0.3 * age))).astype(float)
    eta = -0.5 + 0.5 * age + 0.5 * smoke + 0.8 * age * smoke
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    d = pd.DataFrame({"age": age, "smoke": smoke, "y": y})
    d.loc[rng.random(n) < 1 / (1 + np.exp(-(-1 + 0.5 * age + 0.8 * y))), "smoke"] = np.nan
    return d


def test_passive_interaction_term_recovers_the_analysis_interaction():
    """With the derived predictor age·y in smoke's imputation model (passive), the pooled
    age:smoke coefficient is within 2 pooled SEs of its true 0.8 (a correct imputer fails
    this about 5% of the time at a random seed; the seed is fixed). Without it, the
    imputation model has no interaction and the estimate is pulled toward zero by more than
    3 SEs (about 7 here: a third of smoke is imputed with no age-specific effect)."""
    d = interaction_data(20_000, seed=3)
    formula = "y ~ age * smoke"

    def pooled(**options) -> pd.Series:
        imp = sparkmice.mice(d, m=10, maxit=5, seed=1, **options)
        fits = sparkmice.fit_imputations(imp.complete("long"), formula, family="binomial")
        return sparkmice.pool(fits).set_index("term").loc["age:smoke"]

    with_term = pooled(passive={"age_x_y": "age * y"})
    assert abs(with_term["estimate"] - 0.8) < 2 * with_term["std_error"]
    without = pooled()
    assert 0.8 - without["estimate"] > 3 * without["std_error"]


def test_passive_column_fills_only_missing_cells_and_avoids_circularity():
    rng = np.random.default_rng(2)
    n = 500
    w, h = rng.normal(70, 10, n), rng.normal(1.7, 0.1, n)
    d = pd.DataFrame({"weight": w, "height": h, "bmi": w / h**2, "age": rng.normal(50, 10, n)})
    d.loc[::4, "weight"] = np.nan
    d.loc[::3, "bmi"] = np.nan
    imp = sparkmice.mice(d, m=1, maxit=2, passive={"bmi": "weight / height**2"})
    done = imp.complete(1)
    assert imp.method["bmi"] == "passive" and "bmi" not in imp.visit_sequence
    assert imp.predictor_matrix.loc["weight", "bmi"] == 0  # bmi is derived from weight
    miss = d["bmi"].isna()
    np.testing.assert_allclose(done.loc[miss, "bmi"], done.weight[miss] / done.height[miss] ** 2)
    assert (done.loc[~miss, "bmi"] == d.loc[~miss, "bmi"]).all()
    with pytest.raises(ConfigError, match=r"passive formula for 'x' reads 'nope'"):
        sparkmice.mice(d, m=1, maxit=1, passive={"x": "nope * 2"})
    with pytest.raises(ConfigError, match=r"passive formula for 'x'.*calls something other than"):
        sparkmice.mice(d, m=1, maxit=1, passive={"x": "weight.sum()"})


def rare_levels(seed: int, n: int = 3000) -> pd.DataFrame:
    """A nominal variable with two common and three rare levels (6, 4 and 3 rows), 30% of
    it missing; x depends on it."""
    rng = np.random.default_rng(seed)
    g = np.array(["a"] * 1500 + ["b"] * (n - 1513) + ["r1"] * 6 + ["r2"] * 4 + ["r3"] * 3)
    rng.shuffle(g)
    x = rng.normal(size=n) + (g == "b")
    d = pd.DataFrame({"x": x, "g": g, "z": rng.normal(size=n)})
    d.loc[rng.random(n) < 0.3, "g"] = None
    return d


def test_rare_levels_collapse_with_a_logged_event():
    d = rare_levels(5)
    imp = sparkmice.mice(d, m=2, maxit=2, seed=1, collapse_below=10)
    ev = imp.logged_events
    row = ev[(ev.variable == "g") & (ev.event == "levels collapsed")]
    assert (
        len(row) == 1 and "r1" in row.detail.iloc[0] and "collapse_below=10" in row.detail.iloc[0]
    )
    assert imp.plan.variable("g").groups == (0, 1, 2, 2, 2)
    done = imp.complete("long")
    assert set(done["g"]) <= {"a", "b", "r1", "r2", "r3"}
    # the pooled rare category is imputed rarely: its share among imputed cells stays near
    # its observed share (13 of ~2100 observed rows = 0.6%); 4 binomial SEs over ~1800 cells
    miss = np.tile(d["g"].isna().to_numpy(), 2)
    share = done.loc[miss, "g"].isin(["r1", "r2", "r3"]).mean()
    assert share < 0.006 + 4 * np.sqrt(0.006 / miss.sum())
    # without collapsing no event is logged
    plain = sparkmice.mice(d, m=1, maxit=1, seed=1)
    assert not (plain.logged_events.event == "levels collapsed").any()


def test_level_counts_agree_on_spark_and_arrow(spark):
    import pyarrow as pa

    from sparkmice.summaries import summarize_arrow, summarize_spark

    d = rare_levels(6)
    table = pa.Table.from_pandas(d, preserve_index=False)
    on_spark = summarize_spark(spark.createDataFrame(d).repartition(3), 500, set())
    by_name = {s.name: s for s in on_spark}
    for s in summarize_arrow(table, 500, set()):
        if s.distinct is not None and s.name == "g":
            assert by_name["g"].distinct == s.distinct and by_name["g"].counts == s.counts
            assert by_name["g"].n_missing == s.n_missing


def test_polr_pooled_thresholds_and_slope_recover_the_truth():
    """Proportional odds: logit P(sev <= k) = theta_k - 1.2 x, theta = (-1, 0.5, 2); sev 30%
    missing at random given x and z. Impute with polr (m = 10), fit the same model on each
    completed set (statsmodels OrderedModel), pool by Rubin's rules: the slope and the
    first threshold within 2 pooled SEs of the truth (statsmodels parametrises the later
    thresholds by log increments: theta_2 - theta_1 = 1.5 and theta_3 - theta_2 = 1.5 give
    log(1.5) for both). Each |z| < 2 fails by chance ~5% for a correct imputer; the seed is
    fixed."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    rng = np.random.default_rng(12)
    n = 4000
    x, z = rng.normal(size=n), rng.normal(size=n)
    sev = np.digitize(1.2 * x + rng.logistic(size=n), [-1.0, 0.5, 2.0])
    d = pd.DataFrame(
        {"x": x, "z": z, "sev": pd.Categorical(np.array(LEVELS)[sev], LEVELS, ordered=True)}
    )
    d.loc[rng.random(n) < 1 / (1 + np.exp(-(-1 + 0.8 * z))), "sev"] = None
    imp = sparkmice.mice(d, m=10, maxit=5, seed=4)
    assert imp.method["sev"] == "polr"
    estimates, covariances = [], []
    for k in range(1, 11):
        done = imp.complete(k)
        codes = done["sev"].cat.codes.to_numpy()
        fit = OrderedModel(codes, done[["x"]].to_numpy(), distr="logit").fit(
            method="bfgs", disp=False, maxiter=200
        )
        estimates.append(np.asarray(fit.params))
        covariances.append(np.asarray(fit.cov_params()))
    pooled = sparkmice.pool_estimates(
        np.array(estimates),
        np.array(covariances),
        dfcom=n - 4,
        terms=["x", "theta1", "log_gap2", "log_gap3"],
    ).set_index("term")
    truth = {"x": 1.2, "theta1": -1.0, "log_gap2": np.log(1.5), "log_gap3": np.log(1.5)}
    for term, value in truth.items():
        row = pooled.loc[term]
        assert abs(row["estimate"] - value) < 2 * row["std_error"], (term, row["estimate"])


def test_a_capped_predictor_keeps_its_levels_and_observed_values():
    """g (8 levels, incomplete) predicts x with max_dummies=2: g0 and g1 keep their own
    indicator and the other 6 levels share one, in x's design only; g's own model keeps
    all 8 levels, every imputation is an existing level, and observed cells are unchanged."""
    rng = np.random.default_rng(6)
    n = 800
    g = rng.choice([f"g{i}" for i in range(8)], size=n, p=[0.3, 0.25, 0.15, 0.1, 0.08, 0.05,
                                                          0.04, 0.03])  # fmt: skip
    d = pd.DataFrame({"x": rng.normal(size=n) + (g == "g1"), "g": g, "z": rng.normal(size=n)})
    d.loc[rng.random(n) < 0.25, "g"] = None
    d.loc[rng.random(n) < 0.25, "x"] = np.nan
    imp = sparkmice.mice(d, m=1, maxit=2, seed=2, max_dummies=2)
    g_var = imp.plan.variable("g")
    assert g_var.groups is None and max(g_var.predictor_groups) == 2
    assert (imp.logged_events.event == "predictor levels pooled").sum() == 1
    done = imp.complete(1)
    for col in ("x", "g"):
        seen = d[col].notna()
        pd.testing.assert_series_equal(done.loc[seen, col], d.loc[seen, col])
    assert set(done["g"]) <= set(d["g"].dropna()) and done["g"].notna().all()


@pytest.mark.parametrize("engine", ["inprocess", "spark"])
def test_pmm_imputes_observed_values_of_huge_integers_and_wide_decimals(
    engine, spark, tmp_path
):
    """pmm's imputations are observed values, every digit kept, for columns a float cannot
    hold exactly: int64 near 2^62 and 2^63 - 1 (codes collide within 1024) and
    decimal(38, 10) of 22 digits. Before, the float code was written back (not an
    observed value) and 2^63 - 1 ended the run with a cast error. Timestamps in ns
    imputed as numbers likewise."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    big = np.where(x > 0.8, 2**63 - 1, 2**62 + rng.integers(0, 10**6, n)).astype(np.int64)
    dec = [decimal.Decimal(10**12) + decimal.Decimal(int(v)).scaleb(-10) for v in
           rng.integers(-(10**15), 10**15, n)]  # fmt: skip
    # ns since the epoch are beyond 2^53 too: a float keeps them to 256 ns (Spark reads
    # no ns Parquet timestamps, so there us)
    ticks, unit = (10**9, "ns") if engine == "inprocess" else (10**6, "us")
    stamps = (1_700_000_000 + rng.uniform(0, 10**6, n)) * ticks
    stamps = (stamps.astype(np.int64) + rng.integers(0, 1000, n)).astype(f"datetime64[{unit}]")
    table = pa.table(
        {
            "x": x,
            "big": pa.array(big, mask=rng.random(n) < 0.2),
            "dec": pa.array(dec, pa.decimal128(38, 10), mask=rng.random(n) < 0.2),
            "t": pa.array(stamps, mask=rng.random(n) < 0.2),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    data = spark.read.parquet(str(tmp_path / "in.parquet")) if engine == "spark" else table
    imp = sparkmice.mice(
        data, m=2, maxit=2, seed=1, kind={"t": "continuous"}, output=str(tmp_path / "out")
    )
    files = sorted((tmp_path / "out").glob("_imputation=*/*.parquet"))
    done = pa.concat_tables(pq.read_table(f) for f in files)  # as written, types exact
    assert imp.method["big"] == imp.method["dec"] == imp.method["t"] == "pmm"
    for name in ("big", "dec", "t"):
        observed = {v for v in table.column(name).to_pylist() if v is not None}
        values = done.column(name).to_pylist()
        assert len(values) == 2 * n and set(values) <= observed


def test_a_categorical_keeps_its_unused_categories_in_their_order():
    """As R keeps a factor's unused levels: a pandas categorical's categories come back as
    they went in, unused ones ("e") included and in their own, unsorted order; observed
    cells unchanged, imputed ones among the observed levels. (The output kept only the
    observed levels, sorted: another dtype.)"""
    rng = np.random.default_rng(4)
    n = 600
    x = rng.normal(size=n)
    categories = ["z", "a", "m", "e"]
    g = pd.Categorical(np.where(x > 0.3, "z", np.where(x > -0.5, "a", "m")), categories)
    d = pd.DataFrame({"x": x, "g": g})
    d.loc[rng.random(n) < 0.25, "g"] = None
    imp = sparkmice.mice(d, m=2, maxit=2, seed=1)
    assert imp.method["g"] == "polyreg"
    observed = d["g"].notna().to_numpy()
    for k in (1, 2):
        done = imp.complete(k)["g"]
        assert list(done.cat.categories) == categories and done.notna().all()
        assert (done[observed] == d["g"][observed]).all()
        assert set(done[~observed]) <= {"z", "a", "m"}
