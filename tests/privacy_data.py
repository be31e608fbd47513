"""A small health table with private values, for the privacy tests.

- `patient`: a name per row, 160 distinct names over 400 rows (most seen once to five
  times): nominal with more than 50 levels, so private by default; complete.
- `ward`: 5 common wards and 2 rare ones (3 and 2 rows), 25% missing; private by listing.
- `diet`: not private, with the rare level "raw vegan" seen in exactly 3 rows.
- `x`, `y`: continuous, x incomplete; 3 rows miss both x and ward (a pattern of 3).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WARDS = ["Ward North", "Ward South", "Ward East", "Ward West", "Ward Oak"]
RARE_WARDS = {"Ward Lime Tree": 3, "Ward Elm Close": 2}


def patients(seed: int = 11, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = [f"Patient Doe {i:03d}" for i in range(160)]
    patient = np.array(names + list(rng.choice(names, n - len(names))), dtype=object)
    ward = [*rng.choice(WARDS, n - sum(RARE_WARDS.values()))]
    for level, count in RARE_WARDS.items():
        ward += [level] * count
    diet = [*rng.choice(["omnivore", "vegetarian"], n - 3), *["raw vegan"] * 3]
    order = rng.permutation(n)
    d = pd.DataFrame({
        "patient": patient[order],
        "ward": np.array(ward, dtype=object)[order],
        "diet": np.array(diet, dtype=object)[order],
        "x": rng.normal(size=n),
    })  # fmt: skip
    d["y"] = d["x"] + (d["diet"] == "vegetarian") + rng.normal(size=n)
    rare = d.index[d["ward"].isin(list(RARE_WARDS))]
    common = d.index.difference(rare)
    d.loc[rng.choice(common, n // 4, replace=False), "ward"] = None
    both = rng.choice(d.index[d["ward"].isna()], 3, replace=False)
    rest = d.index[d["ward"].notna()]
    d.loc[both, "x"] = np.nan
    d.loc[rng.choice(rest, 60, replace=False), "x"] = np.nan
    return d


def level_strings(d: pd.DataFrame, column: str) -> list[str]:
    return sorted(d[column].dropna().unique())
