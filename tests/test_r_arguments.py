"""R mice's arguments in sparkmice (issue 14): named visit sequences (plan.visit_order),
`post` (round and squeeze of the imputed cells, sampler.post_process), and the row-block
option's new name `row_blocks` (the old `blocks` still read, and the same run). In-process
runs on R mice's nhanes (25 rows); the command line's: tests/engine/test_pipeline_cli.py."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.config import ConfigError, RenamedOptionWarning
from sparkmice.datasets import load_nhanes
from sparkmice.io.run import RunFolder
from sparkmice.sampler import post_process
from tests.small_plans import plan_of


@pytest.fixture
def nhanes() -> pd.DataFrame:
    return load_nhanes()  # age complete; bmi 9, hyp 8, chl 10 missing


# -- visit sequence -----------------------------------------------------------------------------
# R mice 3.x, check.visitSequence on nhanes: roman = column order of the incomplete ones,
# arabic = reversed, monotone = order(nimp) (hyp 8 < bmi 9 < chl 10), revmonotone = rev.
ORDERS = {
    "roman": ["bmi", "hyp", "chl"],
    "arabic": ["chl", "hyp", "bmi"],
    "monotone": ["hyp", "bmi", "chl"],
    "revmonotone": ["chl", "bmi", "hyp"],
}


@pytest.mark.parametrize(("order", "expected"), ORDERS.items())
def test_named_visit_sequences_are_r_mices(nhanes, order, expected):
    plan, _ = plan_of(nhanes, visit_sequence=order)
    assert list(plan.visit_sequence) == expected
    imp = sparkmice.mice(nhanes, m=1, maxit=1, visit_sequence=order)
    assert imp.visit_sequence == expected
    assert list(imp.trace["variable"]) == expected  # the sweep visits them in that order


def test_monotone_keeps_column_order_among_ties_and_revmonotone_reverses_it():
    d = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "b": [1.0, None, 3, 4, 5, 6]})
    d["c"] = [None, 2.0, 3, 4, 5, 7]
    d["e"] = [None, None, 3.0, 4, 5, 8]
    d["f"] = [1.0, 2, None, 4, 5, 9]
    plan, _ = plan_of(d, visit_sequence="monotone")
    assert list(plan.visit_sequence) == ["b", "c", "f", "e"]  # b, c, f: 1 missing each
    plan, _ = plan_of(d, visit_sequence="revmonotone")
    assert list(plan.visit_sequence) == ["e", "f", "c", "b"]


def test_an_explicit_visit_sequence_still_works_and_leaves_out_complete_ones(nhanes):
    plan, _ = plan_of(nhanes, visit_sequence=["chl", "age", "bmi"])
    assert list(plan.visit_sequence) == ["chl", "bmi"]


def test_a_named_order_changes_the_imputations_and_is_reproducible(nhanes):
    runs = [
        sparkmice.mice(nhanes, m=1, maxit=2, seed=3, visit_sequence=o).complete(1)
        for o in ("roman", "arabic", "roman")
    ]
    pd.testing.assert_frame_equal(runs[0], runs[2])
    assert not runs[0].equals(runs[1])


# -- post ---------------------------------------------------------------------------------------
def test_post_process_rounds_then_squeezes():
    values = np.array([99.4, 150.25, 150.35, 301.0, -np.inf])
    out = post_process(values, {"round": 1, "squeeze": [100, 300]})
    np.testing.assert_array_equal(out, [100.0, 150.2, 150.4, 300.0, 100.0])
    np.testing.assert_array_equal(post_process(np.array([0.5, 1.5, 2.5]), {"round": 0}), [0, 2, 2])
    np.testing.assert_array_equal(post_process(np.array([149.0]), {"round": -1}), [150.0])
    np.testing.assert_array_equal(post_process(values[:2], {"squeeze": [120, 150]}), [120, 150])


def test_post_applies_to_imputed_cells_only_in_every_imputation(nhanes):
    post = {"chl": {"squeeze": [150, 200]}, "bmi": {"round": 0}}
    imp = sparkmice.mice(nhanes, m=3, maxit=3, seed=2, method={"bmi": "norm"}, post=post)
    plain = sparkmice.mice(nhanes, m=3, maxit=3, seed=2, method={"bmi": "norm"})
    long, long_plain = imp.complete("long"), plain.complete("long")
    missing = pd.concat([nhanes.isna()] * 3, ignore_index=True)
    chl, bmi = long["chl"][missing["chl"]], long["bmi"][missing["bmi"]]
    assert chl.between(150, 200).all() and bmi.eq(bmi.round(0)).all()
    # without post the same seed imputes outside [150, 200] and with decimals (so the check
    # above could fail), and observed cells are untouched either way (chl has 113..284)
    assert not long_plain["chl"][missing["chl"]].between(150, 200).all()
    plain_bmi = long_plain["bmi"][missing["bmi"]]
    assert not plain_bmi.eq(plain_bmi.round()).all()
    observed = ~missing["chl"]
    np.testing.assert_array_equal(long["chl"][observed], long_plain["chl"][observed])
    assert not long["chl"][observed].between(150, 200).all()


def test_post_is_seen_by_the_next_models_and_the_trace(nhanes):
    """R applies post right after each imputation of the variable, so the trace (R's
    chainMean) and the models fitted after it see the post-processed values."""
    post = {"chl": {"squeeze": [150, 151]}}
    imp = sparkmice.mice(nhanes, m=1, maxit=2, seed=5, post=post, visit_sequence="roman")
    chl_means = imp.trace.loc[imp.trace["variable"] == "chl", "mean"]
    assert chl_means.between(150, 151).all()
    other = sparkmice.mice(nhanes, m=1, maxit=2, seed=5, visit_sequence="roman")
    # bmi and hyp of sweep 2 are fitted on chl's sweep-1 imputations: with those squeezed,
    # their imputations change (sweep 1's bmi, visited before chl, does not)
    a = imp.trace.set_index(["iteration", "variable"])["mean"]
    b = other.trace.set_index(["iteration", "variable"])["mean"]
    assert a[(1, "bmi")] == b[(1, "bmi")]
    assert a[(2, "bmi")] != b[(2, "bmi")]


def test_post_is_refused_for_columns_it_cannot_apply_to(nhanes):
    d = nhanes.assign(hyp=nhanes["hyp"].map({1.0: "no", 2.0: "yes"}))
    with pytest.raises(ConfigError, match=r"post is set for column 'hyp', which is binary; post"):
        sparkmice.mice(d, m=1, maxit=1, post={"hyp": {"round": 0}})
    with pytest.raises(ConfigError, match=r"post is set for column 'age', which is not imputed"):
        sparkmice.mice(nhanes, m=1, maxit=1, post={"age": {"round": 0}})
    with pytest.raises(ConfigError, match=r"post names column 'weight', which is not in the"):
        sparkmice.mice(nhanes, m=1, maxit=1, post={"weight": {"round": 0}})


# -- row_blocks, formerly blocks --------------------------------------------------------------
def test_blocks_and_row_blocks_give_the_same_run(nhanes, tmp_path):
    new = sparkmice.mice(nhanes, m=2, maxit=2, seed=4, row_blocks=3)
    with pytest.warns(RenamedOptionWarning, match="'blocks' option is now called 'row_blocks'"):
        old = sparkmice.mice(nhanes, m=2, maxit=2, seed=4, blocks=3)
    assert new.plan.n_blocks == old.plan.n_blocks == 3
    pd.testing.assert_frame_equal(new.complete("long"), old.complete("long"))
    # a fan-out task written with the old name adds to a run written with the new one
    out = str(tmp_path / "run")
    sparkmice.mice(nhanes, m=2, maxit=2, seed=4, row_blocks=3, chains=[1], output=out)
    with pytest.warns(RenamedOptionWarning):
        sparkmice.mice(nhanes, m=2, maxit=2, seed=4, blocks=3, chains=[2], output=out)
    assert RunFolder(out).chains() == [1, 2]
    with pytest.raises(sparkmice.OutputExistsError, match=r"differs in: row_blocks \(3 there"):
        sparkmice.mice(nhanes, m=2, maxit=2, seed=4, row_blocks=2, chains=[2], output=out)


def _as_older_version(out: str) -> None:
    """Rewrite config.json as a sparkmice before the rename wrote it: the option named
    `blocks`, no `post` option, and its run id digested from those options."""
    run = RunFolder(out)
    config = run.read_config()
    options = config["identity"]["options"]
    options["blocks"] = options.pop("row_blocks")
    del options["post"]
    config["config"]["blocks"] = config["config"].pop("row_blocks")
    config["run_id"] = "0123456789abcdef"
    run.write_config(config)


def test_a_folder_of_an_older_version_is_the_same_run(nhanes, tmp_path):
    out = str(tmp_path / "run")
    sparkmice.mice(nhanes, m=2, maxit=2, seed=4, row_blocks=3, chains=[1], output=out)
    _as_older_version(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: the new name is given
        sparkmice.mice(nhanes, m=2, maxit=2, seed=4, row_blocks=3, chains=[2], output=out)
    run = RunFolder(out)
    assert run.chains() == [1, 2]
    assert "row_blocks" in run.read_config()["identity"]["options"]  # rewritten as this one
    _as_older_version(out)
    with pytest.raises(sparkmice.OutputExistsError, match=r"differs in: row_blocks \(3 there"):
        sparkmice.mice(nhanes, m=2, maxit=2, seed=4, row_blocks=4, chains=[2], output=out)
    with pytest.raises(sparkmice.OutputExistsError, match=r"differs in: post \(\{\} there"):
        post = {"chl": {"round": 0}}
        sparkmice.mice(nhanes, m=2, maxit=2, seed=4, row_blocks=3, chains=[2], output=out,
                       post=post)  # fmt: skip
    with open(f"{out}/_sparkmice/config.json") as f:
        assert json.load(f)["run_id"] == "0123456789abcdef"  # refused runs changed nothing
