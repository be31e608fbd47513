"""The HTML report shows no level of a private column and no count below min_cell_count."""

from __future__ import annotations

import re

import numpy as np
import pytest
from privacy_data import level_strings, patients

import sparkmice
from sparkmice import MiceConfig
from sparkmice.diagnostics.report import build_report

# patient predicts only x: a 160-level predictor in polyreg's model of ward is slow in-process
PREDICTORS = {"ward": ["x", "y", "diet"], "x": ["patient", "y", "ward", "diet"]}
# a row of md.pattern whose count (the first cell after the row's label) is 3
PATTERN_OF_THREE = re.compile(r"<tr>\s*<th>\d+</th>\s*<td>3</td>")


@pytest.fixture(scope="module")
def data():
    return patients()


@pytest.fixture(scope="module")
def reports(data, tmp_path_factory):
    """Reports of the same data without privacy and with `private: [ward]` (patient is
    private by its 160 levels); both with the original data, so every section is drawn."""
    root = tmp_path_factory.mktemp("private_report")
    out = {}
    for name, options in {
        "plain": {"private_levels_above": None, "min_cell_count": 1},
        "private": {"private": ["ward"]},
    }.items():
        # max_dummies None: patient's 160 levels expanded in full, so its constant dummies
        # are dropped and logged (the events table this test reads)
        config = MiceConfig(
            m=2, maxit=2, seed=1, predictors=PREDICTORS, max_dummies=None, **options
        )
        sparkmice.mice(data, config=config, output=str(root / name))
        out[name] = build_report(root / name, original=data)
    return out


def private_levels(d) -> list[str]:
    return level_strings(d, "patient") + level_strings(d, "ward")


def figure_text(figure) -> str:
    """Every string drawn in a figure: titles, tick labels, annotations."""
    parts = []
    for ax in figure.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        parts += [t.get_text() for t in ax.texts]
    return "\n".join(parts)


def test_plain_report_shows_levels_and_small_counts(data, reports) -> None:
    """The control: without privacy the report carries the levels and the count 3."""
    plain = reports["plain"]
    assert all(level in plain.html for level in level_strings(data, "ward"))
    assert "Patient Doe" in plain.html
    assert PATTERN_OF_THREE.search(plain.html)
    assert "Ward Lime Tree" in figure_text(plain.figures["proportions"])


def test_private_levels_are_nowhere_in_the_report(data, reports) -> None:
    report = reports["private"]
    leaked = [level for level in private_levels(data) if level in report.html]
    assert not leaked, leaked[:5]
    drawn = "\n".join(figure_text(f) for f in report.figures.values())
    assert not [level for level in private_levels(data) if level in drawn]
    assert "level 1 of 7" in drawn  # the proportions of ward, by code
    assert "160 levels (private)" in report.html and "7 levels (private)" in report.html
    assert "patient[level" in report.html  # the dropped dummies of the events table
    coded = report.tables["levels"].query("variable == 'ward'")["level"]
    assert set(coded) == {f"level {k} of 7" for k in range(1, 8)}


def test_small_cells_are_suppressed(data, reports) -> None:
    """Ward Lime Tree (3 observed rows) and the pattern of 3 rows missing x and ward."""
    report = reports["private"]
    section = report.html.split('id="missingness"')[1]
    assert not PATTERN_OF_THREE.search(section)
    assert "<td>&lt;5</td>" in section
    figure = report.figures["proportions"]
    ward = next(ax for ax in figure.axes if ax.get_title() == "ward")
    assert "<5" in [t.get_text() for t in ward.texts]
    levels = report.tables["levels"].query("variable == 'ward' and imputation == 0")
    small = ((levels["count"] > 0) & (levels["count"] < 5)).to_numpy()
    assert small.sum() == 2  # Lime Tree 3 and Elm Close 2 observed rows
    heights = np.array([bar.get_height() for bar in ward.patches])
    assert np.isnan(heights[small]).all() and np.isfinite(heights[~small]).all()
    pattern = report.figures["pattern"]
    assert "<5" in [t.get_text() for t in pattern.axes[0].get_yticklabels()]
