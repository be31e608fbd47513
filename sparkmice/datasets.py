"""Example data: the reference MAR workload with a known truth, and R mice's ``nhanes``.

The reference workload (benchmarks/README.md, "The workload") has 11 columns of mixed type:

* continuous: ``age`` (always observed), ``bp``, ``chol``, ``bmi``, ``lact``, ``crp``;
* binary 0/1 (float): ``smoke``, ``female`` (always observed);
* nominal: ``diet`` (omnivore / vegetarian / vegan), ``region`` (A-E, always observed);
* outcome ``y`` (0/1 float, always observed).

The analysis truth is ``logit P(y=1) = -5.6 + 0.04 age + 0.02 bp + 0.5 smoke
+ 0.3 [diet=vegetarian] - 0.2 [diet=vegan]``. Six columns (bp, chol, bmi, smoke, diet, lact)
are then made missing at random (MAR): each cell is dropped with a probability that depends
only on the always-observed ``age`` and ``y``, about 30-38% per column.

:func:`make_mar` makes the same random draws in the same order as the benchmark's
``gen_mar.py``, so for a given ``(n, seed)`` it returns the same numbers.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TRUE_COEFFICIENTS", "MAR_COLUMNS", "make_mar", "load_nhanes", "load_health_mar"]

#: True coefficients of ``y ~ age + bp + smoke + C(diet)`` (binomial, logit link), in the
#: uncentred parametrisation, named as formulaic/patsy name the terms (omnivore is the
#: reference level of ``diet``).
TRUE_COEFFICIENTS: dict[str, float] = {
    "Intercept": -5.6,
    "age": 0.04,
    "bp": 0.02,
    "smoke": 0.5,
    "C(diet)[T.vegan]": -0.2,
    "C(diet)[T.vegetarian]": 0.3,
}

#: Columns made missing, in the order their missingness is drawn, with the intercept
#: (shift) of their logistic missingness model ``shift + 0.8 z``, ``z = (age-50)/17 + 0.8 y``.
MAR_COLUMNS: tuple[tuple[str, float], ...] = (
    ("bp", -0.9),
    ("chol", -1.0),
    ("bmi", -1.1),
    ("smoke", -1.0),
    ("diet", -1.2),
    ("lact", -0.8),
)

_DIET_LEVELS = ("omnivore", "vegetarian", "vegan")
_REGIONS = np.array(["A", "B", "C", "D", "E"])


def _expit(x: np.ndarray) -> np.ndarray:
    """Logistic function, written as ``1 / (1 + exp(-x))`` (the generator's exact form)."""
    return 1 / (1 + np.exp(-x))


def make_mar(n: int, seed: int = 1, *, amputate: bool = True) -> pd.DataFrame:
    """Draw ``n`` rows of the reference workload with MAR missingness.

    Parameters
    ----------
    n : int
        Number of rows (> 0).
    seed : int
        Seed of ``numpy.random.default_rng``; the same ``(n, seed)`` gives the same frame.
    amputate : bool
        If False, return the complete data before the missingness step (the same values
        as the observed cells of the amputated frame).

    Returns
    -------
    pandas.DataFrame
        Columns age, bp, chol, bmi, lact, crp, smoke, female, diet, region, y. Numbers are
        float64 (missing = NaN); ``diet`` and ``region`` are strings (missing diet = None).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"make_mar: 'n' must be a positive integer. Got {n!r} instead.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"make_mar: 'seed' must be a non-negative integer. Got {seed!r}.")
    n = int(n)
    rng = np.random.default_rng(int(seed))

    # Background: age, sex, region.
    age = rng.uniform(20, 80, n)
    female = rng.binomial(1, 0.5, n)
    region = rng.integers(0, 5, n)
    # Body mass index and blood pressure (bp depends on age, bmi, sex).
    bmi = 22 + 0.08 * (age - 50) + 1.5 * female + rng.normal(0, 3, n)
    bp = 110 + 0.5 * age + 0.8 * (bmi - 25) - 4 * female + rng.normal(0, 10, n)
    # Smoking: younger men smoke more.
    smoke = rng.binomial(1, _expit(-1 + 0.01 * (50 - age) + 0.3 * (1 - female)))
    # Diet from one uniform: vegetarian with p_veg, vegan with 0.05, else omnivore.
    u = rng.random(n)
    p_veg = 0.15 + 0.1 * female
    diet = np.where(u < p_veg, _DIET_LEVELS[1], np.where(u < p_veg + 0.05, _DIET_LEVELS[2],
                                                         _DIET_LEVELS[0]))
    not_omni = diet != _DIET_LEVELS[0]
    chol = 4.5 + 0.02 * (age - 50) + 0.01 * (bp - 130) - 0.3 * not_omni + rng.normal(0, 0.8, n)
    lact = np.exp(0.3 + 0.2 * smoke + 0.005 * (bp - 130) + rng.normal(0, 0.3, n))
    crp = np.exp(0.5 + 0.03 * (bmi - 25) + rng.normal(0, 0.5, n))
    # Outcome, centred form of TRUE_COEFFICIENTS (-1 - 0.04*50 - 0.02*130 = -5.6).
    eta = (-1 + 0.04 * (age - 50) + 0.02 * (bp - 130) + 0.5 * smoke
           + 0.3 * (diet == _DIET_LEVELS[1]) - 0.2 * (diet == _DIET_LEVELS[2]))
    y = rng.binomial(1, _expit(eta))

    frame = pd.DataFrame({
        "age": age, "bp": bp, "chol": chol, "bmi": bmi, "lact": lact, "crp": crp,
        "smoke": smoke.astype(float), "female": female.astype(float),
        "diet": diet.astype(object), "region": _REGIONS[region].astype(object),
        "y": y.astype(float),
    })
    if not amputate:
        return frame
    # MAR: P(missing) depends only on the always-observed age and y.
    z = (age - 50) / 17 + 0.8 * y
    for column, shift in MAR_COLUMNS:
        missing = rng.random(n) < _expit(shift + 0.8 * z)
        frame.loc[missing, column] = np.nan if column != "diet" else None
    return frame


def make_nonlinear(n: int, seed: int) -> pd.DataFrame:
    """The trees' non-linear case: y = x^2 + z + N(0, 0.5^2), x ~ U(-2, 2), z ~ N(0, 1), y
    missing at random given x (about 40%); pmm with main effects only misses the x^2 term."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    z = rng.standard_normal(n)
    y = x**2 + z + 0.5 * rng.standard_normal(n)
    y[rng.random(n) < _expit(-0.5 + x)] = np.nan
    return pd.DataFrame({"x": x, "z": z, "y": y})


def load_nhanes() -> pd.DataFrame:
    """R mice's ``nhanes`` (25 rows; age group 1-3, bmi, hyp 1/2, chl), missing as NaN."""
    with resources.files("sparkmice").joinpath("data/nhanes.csv").open("rb") as fh:
        return pd.read_csv(fh, na_values=["NA", ""], dtype="float64")


def load_health_mar() -> pd.DataFrame:
    """The packaged demo set ``data/health_mar.parquet`` (``make_mar(20000, seed=2026)``)."""
    with resources.files("sparkmice").joinpath("data/health_mar.parquet").open("rb") as fh:
        return pd.read_parquet(fh)


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as Parquet (by its suffix, ``.parquet``) or CSV with ``NA`` for missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False, na_rep="NA")
    else:
        raise ValueError(f"write_frame: unknown suffix {path.suffix!r} of {str(path)!r}; "
                         "use .parquet or .csv.")
    return path


def _main(argv: list[str]) -> None:
    """``python -m sparkmice.datasets N OUT.parquet|OUT.csv [seed]``: write make_mar data."""
    if len(argv) not in (2, 3):
        raise SystemExit("usage: python -m sparkmice.datasets N OUT.parquet|OUT.csv [seed]")
    n, out = int(float(argv[0])), argv[1]
    seed = int(argv[2]) if len(argv) == 3 else 1
    print(write_frame(make_mar(n, seed), out))


if __name__ == "__main__":
    _main(sys.argv[1:])
