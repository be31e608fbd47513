"""The analysis model's design: formula checks and a fixed formulaic ModelSpec.

Formulas are written as in statsmodels/R and parsed by formulaic: `C(x)`, `a:b`, `a*b`,
`I(x**2)`, `np.log(x)`, `- 1`. Text columns are categorical (levels sorted, first level the
reference, as R's factors from text). Rows with a missing value in any variable of the
formula are dropped, as R's `na.action = na.omit`.

Term names are formulaic's; they differ from R's only in spelling:

    formulaic             R
    Intercept             (Intercept)
    C(diet)[T.vegan]      dietvegan            (diet a factor; R writes C(diet)vegan for C())
    sex[T.male]           sexmale              (text column)
    age:bmi               age:bmi
    I(x ** 2)             I(x^2)
    np.log(x)             log(x)

The ModelSpec is built once, up front, so that every imputation and every data block gets
the same columns in the same order, whatever levels a block happens to contain.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.model_spec import ModelSpecs

from sparkmice.analysis.formula import expression_columns, formula_columns
from sparkmice.kernels.glm import FAMILIES
from sparkmice.names import IMPUTATION, ROW_ID


def check_family(family: str) -> str:
    """Return `family` if supported, else raise naming the options."""
    if family not in FAMILIES:
        raise ValueError(
            f"family {family!r} is not supported; use one of {', '.join(FAMILIES)} "
            "(gaussian = identity link, binomial = logit, poisson = log)"
        )
    return family


def formula_variables(formula: str, columns: Iterable[str]) -> list[str]:
    """The data columns that `formula` uses, after checking that each exists in `columns`.

    Every route of a user's formula to formulaic passes here first: `check_formula` (in
    `formula_columns`) refuses anything outside the safe subset before formulaic evaluates
    a thing."""
    lhs, rhs = formula_columns(formula)
    try:
        Formula(formula)
    except Exception as exc:
        raise ValueError(
            f"cannot parse formula {formula!r} ({exc}); write it as 'y ~ x1 + C(x2) + x1:x3'"
        ) from exc
    if not lhs:
        raise ValueError(f"formula {formula!r} has no outcome; write it as 'y ~ x1 + x2'")
    used = sorted({*lhs, *rhs})
    available = [c for c in columns if c not in (IMPUTATION, ROW_ID)]
    unknown = [v for v in used if v not in available]
    if unknown:
        raise ValueError(
            f"formula {formula!r} names unknown column(s) {unknown}; the data has columns "
            f"{available}. Fix the spelling in the formula"
        )
    return used


def model_spec(formula: str, prototype: pd.DataFrame) -> ModelSpecs:
    """ModelSpec of `formula` built on `prototype`, which must show every category level.
    A categorical's categories that no row holds are left out, as R's model frame drops
    unused levels (and the Spark route sees only the levels present): else their columns
    are all zero and the design rank-deficient."""
    frame = prototype.copy(deep=False)
    for name, column in prototype.items():
        if isinstance(column.dtype, pd.CategoricalDtype):
            frame[name] = column.cat.remove_unused_categories()
    spec = model_matrix(formula, frame).model_spec
    if len(spec.lhs.column_names) != 1:
        raise ValueError(
            f"the outcome of {formula!r} gives columns {list(spec.lhs.column_names)}; it must "
            "be one number per row (0/1 for binomial): write e.g. I(y == 'yes') ~ ..."
        )
    return spec


def categorical_variables(spec: ModelSpecs) -> list[str]:
    """Columns that feed a categorical factor of the right-hand side (their levels matter)."""
    out: set[str] = set()
    for factor, (kind, _state) in spec.rhs.encoder_state.items():
        if kind.value != "categorical":
            continue
        used = expression_columns(str(factor))
        if len(used) != 1:
            raise ValueError(
                f"categorical term {factor} uses several columns {sorted(used)}; derive it in "
                "one column first and use C(that_column)"
            )
        out |= set(used)
    return sorted(out)


def design_arrays(spec: ModelSpecs, data: pd.DataFrame, family: str):
    """Outcome y (n,) and design X (n, p) as float arrays, rows with NA dropped."""
    mm = spec.get_model_matrix(data)
    y = np.asarray(mm.lhs, dtype=float).ravel()
    x = np.asarray(mm.rhs, dtype=float)
    if family == "binomial" and np.any((y < 0) | (y > 1)):
        bad = y[(y < 0) | (y > 1)][0]
        raise ValueError(
            f"binomial outcome {spec.lhs.column_names[0]!r} has value {bad:g} outside 0..1; "
            "code it 0/1 or write a condition such as I(y > 60) ~ ..."
        )
    if family == "poisson" and np.any(y < 0):
        raise ValueError(
            f"poisson outcome {spec.lhs.column_names[0]!r} has negative values; "
            "use counts, or family='gaussian'"
        )
    return y, x


def check_full_rank(xtwx: np.ndarray, terms: tuple[str, ...], imputation: int) -> None:
    """Raise if X'WX is (numerically) singular, naming the terms involved."""
    d = np.sqrt(np.diag(xtwx))
    zero = [t for t, v in zip(terms, d, strict=True) if v == 0.0]
    if not zero:
        scaled = xtwx / np.outer(d, d)
        eig = np.linalg.eigvalsh(scaled)
        if eig[0] > 1e-12 * eig[-1]:
            return
    what = f"terms {zero} are all zero" if zero else "some terms are linear combinations"
    raise ValueError(
        f"the design of imputation {imputation} is rank-deficient ({what}); remove redundant "
        "terms from the formula (e.g. a level that never occurs, or a duplicated column)"
    )
