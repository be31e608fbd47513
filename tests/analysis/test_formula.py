"""The analysis formula is checked on its syntax tree before formulaic evaluates anything."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from formulaic import Formula, model_matrix

import sparkmice
from sparkmice import cli
from sparkmice.analysis import fit_complete_cases, fit_imputations, fit_mean_imputed
from sparkmice.analysis.formula import FormulaError, check_formula
from sparkmice.config import ConfigError
from sparkmice.congeniality import check_congeniality
from sparkmice.pooling import job as pool_job

ROOT = Path(__file__).resolve().parents[2]


def exploit(marker: Path) -> str:
    """The audit's formula: runs `touch marker` when formulaic evaluates it."""
    return f'y ~ I(np.__builtins__["__import__"]("os").system("touch {marker}") + x)'


@pytest.fixture
def long() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    parts = []
    for k in (1, 2):
        x = rng.normal(size=40)
        parts.append(pd.DataFrame({"y": 1 + x + rng.normal(size=40), "x": x, "g": "a",
                                   "_imputation": k, "_row_id": np.arange(40)}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def test_the_exploit_runs_in_formulaic_unchecked(tmp_path, long) -> None:
    """Why the check exists: formulaic alone runs the formula's Python (so the tests below,
    which assert the marker is absent, would fail without the check)."""
    marker = tmp_path / "ran"
    model_matrix(exploit(marker), long)
    assert marker.exists()


def test_the_exploit_is_refused_by_the_api(tmp_path, long) -> None:
    marker = tmp_path / "ran"
    for call in (
        lambda f: fit_imputations(long, f),
        lambda f: fit_complete_cases(long.drop(columns="_imputation"), f),
        lambda f: fit_mean_imputed(long.drop(columns="_imputation"), f),
    ):
        with pytest.raises(FormulaError, match=r"np.__builtins__ reads an attribute with '__'"):
            call(exploit(marker))
    assert not marker.exists()


def test_the_exploit_is_refused_by_sparkmice_pool(tmp_path, long, monkeypatch, capsys) -> None:
    """`sparkmice pool` with the reducer replaced by the pandas fit (no Spark): exit 2, one
    line naming the piece, and nothing run."""
    marker = tmp_path / "ran"

    def pandas_reducer(spark, imputed, formula, family, dfcom, *rest):
        return sparkmice.pool(fit_imputations(long, formula, family, dfcom))

    monkeypatch.setattr(pool_job, "get_spark", lambda: None)
    monkeypatch.setattr(pool_job, "pool_directory", pandas_reducer)
    out = tmp_path / "pooled.csv"
    argv = ["pool", "--imputed", str(tmp_path), "--formula", exploit(marker), "--output", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sparkmice pool: error: formula")
    assert "np.__builtins__" in err[0] and "analysis formulas allow only" in err[0]
    assert not marker.exists() and not out.exists()
    assert cli.main([*argv[:3], "--formula", "y ~ x", "--output", str(out)]) == 0  # the route
    assert out.exists()


def test_the_exploit_is_refused_by_check_congeniality(tmp_path, capsys) -> None:
    marker = tmp_path / "ran"
    d = pd.DataFrame({"y": [1.0, 2.0, np.nan, 4.0, 5.0, 3.0], "x": [1.0, 2, 3, 4, np.nan, 6]})
    out = tmp_path / "run"
    plan = sparkmice.mice(d, m=1, maxit=1, seed=1, output=str(out)).plan
    with pytest.raises(FormulaError):
        check_congeniality(plan, exploit(marker))
    assert not marker.exists()
    assert (
        cli.main(["check-congeniality", "--imputed", str(out), "--formula", exploit(marker)]) == 2
    )
    assert "np.__builtins__ reads an attribute with '__'" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("formula", "piece"),
    [
        ("y ~ x.__class__", "x.__class__ reads an attribute with '__'"),
        ("y ~ x.__class__.__mro__", "reads an attribute with '__'"),
        ("y ~ __import__", "__import__ is a name with '__'"),
        ("y ~ `__class__`", "`__class__` is a name with '__'"),
        ("y ~ I((lambda: 1)()) + x", "lambda is not allowed"),
        ("y ~ x[0]", r"x\[0\] is not allowed \(Subscript\)"),
        ("y ~ I(x[1:2])", r"x\[1:2\] uses Subscript"),
        ("y ~ 'x'", r"'x' is not allowed \(Constant\)"),
        ("y ~ I('a' + x)", "'a' has a constant that is not a number"),
        ("y ~ open('/etc/passwd')", r"open\('/etc/passwd'\) calls a function outside"),
        ("y ~ eval('1')", r"eval\('1'\) calls a function outside"),
        ("y ~ exec('1')", r"exec\('1'\) calls a function outside"),
        ("y ~ getattr(x, 'real')", r"getattr\(x, 'real'\) calls a function outside"),
        ("y ~ I(getattr(x, 'real'))", "calls something other than"),
        ("y ~ np.random.seed(1)", "calls a function outside"),
        ("y ~ np.log(x).sum()", "calls a function outside"),
        ("y ~ I(x.sum())", r"x.sum\(\) calls something other than"),
        ("y ~ C(x, levels=['a'])", r"is not C\(column\)"),
        ("y ~ C(np.log(x))", r"is not C\(column\)"),
        ("y ~ scale(x, center=open)", "takes only"),
        ("y ~ I(x if x else 1)", "uses IfExp"),
        ("y ~ I(x and 1)", "uses And"),
        ("y ~ {x}", r"is not allowed \(Set\)"),
        ("y ~ x ~ z", "more than one ~"),
        ("y ~ `x", "unclosed backtick"),
    ],
)
def test_escapes_are_refused_naming_the_piece(formula, piece) -> None:
    with pytest.raises(FormulaError, match=piece) as info:
        check_formula(formula)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, ConfigError)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x - 1", "y ~ 0 + x", "y ~ -1 + x", "y ~ (a + b)**2", "y ~ a/b", "~ x",
        "Ozone ~ `Solar.R` + Solar.R + `Wind speed`:Temp", "y ~ scale(x, scale=False)",
        "y ~ center(x) + scale(np.log(x), ddof=0)", "y ~ log(x) + exp(x) + abs(x)",
        "I(sex == 'female') ~ I(x > 60) + I((x - 50) * z)", "y ~ np.sqrt(np.abs(x))",
    ],
)  # fmt: skip
def test_the_safe_subset_is_accepted(formula) -> None:
    assert check_formula(formula) == formula


def _repo_formulas() -> list[str]:
    """Every quoted formula in the tests, README, code, jobs and benchmarks (not this file)."""
    quoted = re.compile(r""""([^"\n]*~[^"\n]*)"|'([^'\n]*~[^'\n]*)'""")
    patterns = ("tests/**/*.py", "benchmarks/**/*.py", "*.md", "conf/*", "jobs/*.py",
                "sparkmice/**/*.py")  # fmt: skip
    paths = [p for pattern in patterns for p in ROOT.glob(pattern)]
    found = set()
    for path in paths:
        if path.name == Path(__file__).name:
            continue
        for text in (a or b for a, b in quoted.findall(path.read_text())):
            try:
                Formula(text)  # parsing does not evaluate; prose such as "~ N(0, 1)" fails
            except Exception:
                continue
            found.add(text)
    return sorted(found)


def test_every_formula_of_the_repository_passes() -> None:
    formulas = _repo_formulas()
    assert "I(hyp == 'yes') ~ age * bmi" in formulas and len(formulas) > 30
    refused = {}
    for f in formulas:
        try:
            check_formula(f)
        except FormulaError as e:
            refused[f] = str(e)
    assert not refused


def test_spark_route_refuses_before_formulaic(spark, long, tmp_path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(FormulaError):
        fit_imputations(spark.createDataFrame(long), exploit(marker))
    assert not marker.exists()
