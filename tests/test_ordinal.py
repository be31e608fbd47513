"""The ordered-scale hint: which level sets look ordered (and in which order), which must
not, and the plan's log line, whose config line declares the column ordered when used."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.ordinal import ordered_hint, ordered_scale


@pytest.mark.parametrize(
    ("levels", "order"),
    [
        (["G3", "G1", "G2", "G5", "G4"], ["G1", "G2", "G3", "G4", "G5"]),
        (["P1", "P6", "P2", "P3", "P4", "P5"], ["P1", "P2", "P3", "P4", "P5", "P6"]),
        (["high", "low", "medium"], ["low", "medium", "high"]),
        (["Low", "High", "Moderate", "Very high"], ["Low", "Moderate", "High", "Very high"]),
        (["3", "1", "5", "2", "4"], ["1", "2", "3", "4", "5"]),
        (["0", "2", "4", "6", "8", "10"], None),  # even scores only: too many gaps
        (["stage III", "stage I", "stage IV", "stage II"],
         ["stage I", "stage II", "stage III", "stage IV"]),
        (["IV", "II", "I", "III"], ["I", "II", "III", "IV"]),
        (["Grade_2", "Grade_0", "Grade_1"], ["Grade_0", "Grade_1", "Grade_2"]),
        (["grade 1", "grade 2", "grade 4"], ["grade 1", "grade 2", "grade 4"]),  # one gap
        (["severe", "none", "moderate", "mild"], ["none", "mild", "moderate", "severe"]),
        (["Agree", "Strongly disagree", "Neutral", "Disagree", "Strongly agree"],
         ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]),
        (["often", "never", "always", "sometimes", "rarely"],
         ["never", "rarely", "sometimes", "often", "always"]),
        (["good", "poor", "excellent", "fair", "very good"],
         ["poor", "fair", "good", "very good", "excellent"]),
        (["65+", "18-39", "<18", "40-64"], ["<18", "18-39", "40-64", "65+"]),
        (["20-39", "60-99", "40-59"], ["20-39", "40-59", "60-99"]),  # R's nhanes2 age
    ],
)  # fmt: skip
def test_ordered_scales_are_recognised_in_order(levels, order):
    assert ordered_scale(levels) == (tuple(order) if order else None)


@pytest.mark.parametrize(
    "levels",
    [
        ["Amsterdam", "Berlin", "Paris", "Rome"],  # city names
        ["north", "east", "west", "south", "city"],
        ["E11", "I10", "J45", "C50"],  # ICD-10 codes, different chapters
        ["E10", "E11", "E13", "E14"],  # ICD-10 codes of one chapter: not from 0 or 1
        ["C50.9", "C18.7", "C34.1"],
        ["A", "B", "C", "D", "E"],  # regions (letters are never a scale here)
        ["A", "B", "AB", "O"],  # blood groups
        ["I", "V", "X"],  # Roman-looking, but 1, 5, 10
        ["1", "10", "100"],
        ["omnivore", "vegetarian", "vegan"],
        ["low", "medium", "banana"],  # one word off the scale
        ["G1", "P2", "G3"],  # two prefixes
        ["10-20", "15-30", "40+"],  # overlapping bands
        ["G1", "g1", "G2"],  # the same level twice, up to case
        ["low", "high"],  # two levels: a binary column, not a scale
        ["a" * 60 + "!", "b", "c"],  # no pathological backtracking either
    ],
)
def test_other_level_sets_do_not_look_ordered(levels):
    assert ordered_scale(levels) is None


def test_non_string_levels_are_not_judged():
    assert ordered_scale([1, 2, 3]) is None


def test_hint_carries_a_config_line_that_parses():
    hint = ordered_hint("gen", ["G2", "G1", "G3"])
    assert hint is not None and hint.startswith("levels G1 < G2 < G3 look like an ordered scale")
    line = json.loads(hint.split("config line: ", 1)[1])
    assert line == {"kind": {"gen": "ordered"}, "levels": {"gen": ["G1", "G2", "G3"]}}
    assert ordered_hint("city", ["Paris", "Rome", "Oslo"]) is None


def _stages(seed: int = 1, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(8, 20, n)
    stage = np.clip(((age - 8) / 2.5 + rng.normal(0, 0.7, n)).astype(int), 0, 4)
    frame = pd.DataFrame({
        "age": age,
        "gen": np.array([f"G{s + 1}" for s in stage], dtype=object),
        "city": rng.choice(["Leiden", "Delft", "Gouda"], n).astype(object),
        "reg": rng.choice(["north", "east", "west"], n).astype(object),
    })  # fmt: skip
    frame.loc[rng.random(n) < 0.4, ["gen", "city"]] = None
    return frame


def test_plan_logs_the_hint_and_keeps_the_method(caplog):
    data = _stages()
    with caplog.at_level(logging.INFO, logger="sparkmice"):
        imp = sparkmice.mice(data, m=1, maxit=1, seed=1)
    assert imp.method["gen"] == "polyreg" and imp.method["city"] == "polyreg"
    hints = [r.message for r in caplog.records if "look like an ordered scale" in r.message]
    assert len(hints) == 1 and hints[0].startswith("gen: levels G1 < G2 < G3 < G4 < G5")
    events = imp.logged_events
    assert events.loc[events.event == "looks ordered", "variable"].tolist() == ["gen"]
    # the suggested line, used as it is, declares gen ordered: polr, no hint any more
    line = json.loads(hints[0].split("config line: ", 1)[1])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sparkmice"):
        declared = sparkmice.mice(data, m=1, maxit=1, seed=1, **line)
    assert declared.method["gen"] == "polr"
    assert declared.plan.variable("gen").levels == ("G1", "G2", "G3", "G4", "G5")
    assert not [r for r in caplog.records if "look like an ordered scale" in r.message]


def test_private_columns_get_no_hint(caplog):
    with caplog.at_level(logging.INFO, logger="sparkmice"):
        imp = sparkmice.mice(_stages(), m=1, maxit=1, seed=1, private=["gen"])
    assert not (imp.logged_events.event == "looks ordered").any()
    assert not [r for r in caplog.records if "G1" in r.message]
