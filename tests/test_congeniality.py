"""check_congeniality, `sparkmice check-congeniality` and the pool job's warning, on small
in-process runs of the reference MAR data (no Spark).

In make_mar, age, crp, female, region and y are complete; bp, chol, bmi, lact (pmm), smoke
(logreg) and diet (polyreg) are imputed.
"""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

import sparkmice
from sparkmice import congeniality_job
from sparkmice.congeniality import (
    check_congeniality,
    check_congeniality_dir,
    read_run_config,
    warn_congeniality,
)
from sparkmice.datasets import make_mar
from sparkmice.pooling import job as pool_job

INTERACTION = "y ~ age * smoke + C(diet)"


def _mice(output=None, **options):
    return sparkmice.mice(make_mar(300), m=1, maxit=1, seed=1, output=output, **options)


@pytest.fixture(scope="module")
def imputed(tmp_path_factory):
    """Directory of a default run (every column predicts every other)."""
    out = tmp_path_factory.mktemp("congeniality") / "imputed"
    result = _mice(str(out))
    return result, str(out)


def _rows(report, variable, term):
    f = report.findings
    return f[(f["variable"] == variable) & (f["term"] == term)]


def test_interaction_not_represented(imputed):
    report = check_congeniality(imputed[0].plan, INTERACTION)
    assert not report.ok
    assert list(report.findings.columns) == ["variable", "term", "problem", "fix"]
    assert report.checked == ("smoke", "diet")
    # smoke is in the term: its model needs the outcome times its partner, y * age
    smoke = _rows(report, "smoke", "age:smoke")
    assert len(smoke) == 1
    assert "y * age" in smoke["problem"].iloc[0]
    assert 'passive: {y_x_age: "y * age"}' in smoke["fix"].iloc[0]
    # diet is outside the term: its model needs the product itself
    diet = _rows(report, "diet", "age:smoke")
    assert 'passive: {age_x_smoke: "age * smoke"}' in diet["fix"].iloc[0]
    assert report.changes == {"passive": {"y_x_age": "y * age", "age_x_smoke": "age * smoke"}}
    text = str(report)
    assert "Meng 1994" in text and "age:smoke" in text and 'y_x_age: "y * age"' in text


def test_suggested_changes_make_it_ok(imputed):
    changes = check_congeniality(imputed[0].plan, INTERACTION).changes
    assert check_congeniality(_mice(**changes).plan, INTERACTION).ok


def test_represented_by_value_not_spelling():
    """A centred product and a reordered one span the same design: no finding."""
    plan = _mice(passive={"ya": "age * y", "axs": "(age - 50) * smoke"}).plan
    report = check_congeniality(plan, INTERACTION)
    assert report.ok, str(report)
    assert "ok:" in str(report)


def test_linear_formula_of_predictors_is_ok(imputed):
    report = check_congeniality(imputed[0].plan, "y ~ age + bp + smoke + C(diet) + female")
    assert report.ok
    assert report.findings.empty
    assert report.checked == ("bp", "smoke", "diet")


def test_outcome_left_out_of_predictors():
    plan = _mice(predictors={"bp": ["age", "smoke", "female"]}).plan
    report = check_congeniality(plan.to_dict(), "y ~ age + bp + smoke")  # the JSON form
    row = _rows(report, "bp", "y")
    assert len(row) == 1
    assert "outcome y is not a predictor of bp" in row["problem"].iloc[0]
    assert "toward zero" in row["problem"].iloc[0]
    assert row["fix"].iloc[0] == "predictors: {bp: ['age', 'smoke', 'female', 'y']}"
    assert report.changes == {"predictors": {"bp": ["age", "smoke", "female", "y"]}}
    assert set(report.findings["variable"]) == {"bp"}  # smoke's model has y


def test_nonlinear_terms(imputed):
    report = check_congeniality(imputed[0].plan, "y ~ bp + I(bp**2) + np.log(crp)")
    own = _rows(report, "bp", "I(bp ** 2)")["fix"].iloc[0]
    assert "just another variable" in own and "bp_pow_2 = bp ** 2" in own
    other = _rows(report, "bp", "np.log(crp)")["fix"].iloc[0]
    assert 'passive: {log_crp: "log(crp)"}' in other
    # np.log(crp) of the complete crp, carried by a passive predictor: no finding
    plan = _mice(passive={"log_crp": "log(crp)"}).plan
    again = check_congeniality(plan, "y ~ bp + np.log(crp)")
    assert again.ok, str(again)


def test_method_without_predictors_and_unimputed_variable():
    plan = _mice(method={"bp": "mean", "chol": ""}).plan
    report = check_congeniality(plan, "y ~ bp + chol")
    assert "uses no predictors" in _rows(report, "bp", "bp")["problem"].iloc[0]
    chol = _rows(report, "chol", "chol")
    assert "incomplete and not imputed" in chol["problem"].iloc[0]
    assert report.changes["method"] == {"chol": "pmm", "bp": "pmm"}


def test_nominal_partner_suggests_strata_or_indicators(imputed):
    report = check_congeniality(imputed[0].plan, "y ~ bp * C(region)")
    fix = _rows(report, "bp", "bp:C(region)")["fix"].iloc[0]
    assert "cannot read the nominal region" in fix
    assert "separately within each level of region" in fix


def test_unknown_column_is_refused(imputed):
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['agee'\].*Fix the spelling"):
        check_congeniality(imputed[0].plan, "y ~ agee + smoke")
    plan = _mice(passive={"age2": "age ** 2"}).plan
    with pytest.raises(ValueError, match=r"'age2', a derived passive column.*I\(age \*\* 2\)"):
        check_congeniality(plan, "y ~ age + age2")
    with pytest.raises(TypeError, match="takes a Plan"):
        check_congeniality([1, 2], "y ~ age")


def test_directory_and_job(imputed, capsys, tmp_path):
    result, out = imputed
    assert read_run_config(out)["visit_sequence"] == list(result.plan.visit_sequence)
    from_dir = check_congeniality_dir(out, INTERACTION)
    pd.testing.assert_frame_equal(
        from_dir.findings, check_congeniality(result.plan, INTERACTION).findings
    )

    parser = argparse.ArgumentParser()
    congeniality_job.add_arguments(parser)
    assert (
        congeniality_job.run(parser.parse_args(["--imputed", out, "--formula", INTERACTION])) == 0
    )
    assert congeniality_job.run(parser.parse_args(["--imputed", out, "--formula", "y ~ bp"])) == 0
    printed = capsys.readouterr().out
    assert "age:smoke" in printed and "ok:" in printed

    code = congeniality_job.run(parser.parse_args(["--imputed", out, "--formula", "y ~ bpp"]))
    assert code == 2
    assert "['bpp']" in capsys.readouterr().err
    code = congeniality_job.run(
        parser.parse_args(["--imputed", str(tmp_path), "--formula", "y ~ x"])
    )
    assert code == 2
    assert "not the output directory of a sparkmice run" in capsys.readouterr().err


def test_pool_job_warns_before_pooling(imputed, capsys, monkeypatch, tmp_path):
    """The pool job prints the findings when DIR holds a run's config (Spark stubbed out)."""
    _, out = imputed
    seen = []

    def fake_pool(spark, imputed_dir, formula, *rest):
        seen.append(capsys.readouterr().err)  # what was printed before pooling
        return pd.DataFrame({"term": ["age"], "estimate": [0.04]})

    monkeypatch.setattr(pool_job, "get_spark", lambda: None)
    monkeypatch.setattr(pool_job, "pool_directory", fake_pool)
    parser = argparse.ArgumentParser()
    pool_job.add_arguments(parser)
    argv = ["--imputed", out, "--formula", INTERACTION, "--output", str(tmp_path / "p.csv")]
    assert pool_job.run(parser.parse_args(argv)) == 0
    assert "warning: imputation models not congenial" in seen[0]
    assert 'y_x_age: "y * age"' in seen[0]

    assert warn_congeniality(str(tmp_path), INTERACTION) is None  # no run there: silent
    assert warn_congeniality(out, "y ~ nosuch") is None  # bad formula: pooling reports it
