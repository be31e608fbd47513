"""Private values stay out of config.json and logged events; small counts read "<5"."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from privacy_data import RARE_WARDS, level_strings, patients

import sparkmice
from sparkmice import MiceConfig
from sparkmice.api import OutputExistsError
from sparkmice.config import ConfigError
from sparkmice.congeniality import check_congeniality
from sparkmice.privacy import count_text, level_code, levels_digest

# patient predicts only x: a 160-level predictor in polyreg's model of ward is slow in-process
PREDICTORS = {"ward": ["x", "y", "diet"], "x": ["patient", "y", "ward", "diet"]}


def run(d: pd.DataFrame, out, **options):
    """max_dummies None: patient expanded into all 159 dummies (as R mice), so that some are
    constant and their events name levels, the leak the tests look for."""
    options = {
        "m": 2, "maxit": 2, "seed": 1, "predictors": PREDICTORS, "max_dummies": None, **options
    }  # fmt: skip
    return sparkmice.mice(d, config=MiceConfig(**options), output=str(out))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return patients()


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """The same data without privacy (the leak the tests guard against) and with it."""
    root = tmp_path_factory.mktemp("privacy")
    plain = run(data, root / "plain", private_levels_above=None, min_cell_count=1)
    private = run(data, root / "private", private=["ward"])
    return (plain, root / "plain"), (private, root / "private")


def private_levels(d: pd.DataFrame) -> list[str]:
    return level_strings(d, "patient") + level_strings(d, "ward")


def test_without_privacy_levels_reach_config_and_events(data, runs) -> None:
    """The control: the checks below can fail, since the plain run writes the levels."""
    (imp, out), _ = runs
    config = (out / "_sparkmice" / "config.json").read_text()
    events = (out / "_sparkmice" / "events.csv").read_text()
    assert all(json.dumps(level) in config for level in private_levels(data))
    assert "patient[Patient Doe" in events  # a sweep's event: a dummy dropped as constant


def test_private_levels_are_not_in_config_events_or_logged_events(data, runs) -> None:
    _, (imp, out) = runs
    assert imp.plan.private == {"patient", "ward"}  # ward listed; patient has 160 > 50 levels
    texts = {
        "config.json": (out / "_sparkmice" / "config.json").read_text(),
        "events.csv": (out / "_sparkmice" / "events.csv").read_text(),
        "logged_events": imp.logged_events.to_csv(),
    }
    for where, text in texts.items():
        leaked = [level for level in private_levels(data) if level in text]
        assert not leaked, (where, leaked[:3])
    dropped = imp.logged_events.query("event == 'predictor dropped'").detail
    assert dropped.str.contains(r"^patient\[level \d+ of 160\]: constant", regex=True).any()


def test_config_keeps_count_and_digest_of_private_levels(data, runs) -> None:
    _, (imp, out) = runs
    entries = {v["name"]: v for v in json.loads((out / "_sparkmice/config.json").read_text())
               ["variables"]}  # fmt: skip
    ward = entries["ward"]
    levels = sorted(set(data["ward"].dropna()))
    assert ward["levels"] is None and ward["private"] is True and ward["n_levels"] == 7
    assert ward["levels_sha256"] == levels_digest(levels)
    assert entries["diet"]["levels"] == ["omnivore", "raw vegan", "vegetarian"]  # not private
    assert "private" not in entries["diet"]


def test_same_run_check_works_on_digests(data, tmp_path) -> None:
    """A fan-out's second chain joins the first (same digests); other levels are refused."""
    out = tmp_path / "fan"
    run(data, out, m=2, chains=[1])
    run(data, out, m=2, chains=[2])
    assert sorted(p.name for p in out.glob("_imputation=*")) == ["_imputation=1", "_imputation=2"]
    renamed = data.assign(patient=data["patient"].replace("Patient Doe 000", "Patient Roe 000"))
    with pytest.raises(OutputExistsError):
        run(renamed, out, m=2, chains=[2])


def test_congeniality_reads_a_private_run_like_a_plain_one(data, runs) -> None:
    """Its synthetic data stand in codes for the private levels: same findings."""
    (plain, _), (private, out) = runs
    formula = "y ~ x * C(ward) + diet"
    config = json.loads((out / "_sparkmice/config.json").read_text())
    report = check_congeniality(config, formula)
    assert len(report.findings) == 2  # x:C(ward) is not in the models of x and ward
    pd.testing.assert_frame_equal(report.findings, check_congeniality(plain.plan, formula).findings)
    assert not [level for level in private_levels(data) if level in str(report)]


def test_collapse_event_names_codes_and_small_counts(data) -> None:
    """The plan's event for rare levels: values and counts when open; codes and "<5" when
    private (ward: Elm Close 2 rows, Lime Tree 3 rows, levels 2 and 3 of 7 in sorted order)."""
    options = {"m": 1, "maxit": 1, "seed": 1, "collapse_below": 5, "predictors": PREDICTORS}

    def detail(**more) -> str:
        ev = sparkmice.mice(data, config=MiceConfig(**options, **more)).logged_events
        return ev.query("variable == 'ward' and event == 'levels collapsed'").detail.iloc[0]

    assert detail(min_cell_count=1).startswith("Ward Elm Close (2), Ward Lime Tree (3): fewer")
    assert detail().startswith("Ward Elm Close (<5), Ward Lime Tree (<5): fewer")
    private = detail(private=["ward"])
    assert private.startswith("level 2 of 7 (<5), level 3 of 7 (<5): fewer")
    assert not any(level in private for level in RARE_WARDS)
    assert count_text(3, 5) == "<5" and count_text(0, 5) == "0" and count_text(5, 5) == "5"
    assert level_code(2, 152) == "level 3 of 152"


def test_private_names_a_column_of_the_input(data) -> None:
    with pytest.raises(ConfigError, match="private names column 'wards'"):
        sparkmice.mice(data, m=1, maxit=1, private=["wards"])
