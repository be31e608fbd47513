"""Private values: which columns' levels never leave the data, and how counts are shown.

A categorical column is private when the config names it in `private`, or when it is
nominal with more than `private_levels_above` levels (names, addresses, practice codes:
a column with that many categories is more often an identifier than an analysis factor).
The levels of a private column are written nowhere beside the data: `config.json` holds
their number and a SHA-256 digest of the level list (so two runs on the same data still
compare equal), and events and reports name a level by its code, "level 3 of 152", its
position in the plan's order (sorted values unless declared in `levels`).

Counts below `min_cell_count` (default 5, the usual small-cell rule of health statistics)
are shown as "<5" in events, report tables and plots.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any


def is_private(
    name: str, kind: str, n_levels: int, private: Sequence[str], above: int | None
) -> bool:
    """Whether the levels of column `name` are private (see the module docstring)."""
    if kind == "continuous":
        return False
    return name in private or (kind == "nominal" and above is not None and n_levels > above)


def level_code(index: int, n_levels: int) -> str:
    """How events and reports name level `index` (0-based) of a private column."""
    return f"level {index + 1} of {n_levels}"


def levels_digest(levels: Sequence[Any]) -> str:
    """SHA-256 of the level list as canonical JSON (numpy scalars as Python values)."""
    plain = [v.item() if hasattr(v, "item") else v for v in levels]
    text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def count_text(count: Any, min_count: int) -> str:
    """A count for display: "<min_count" when it is a small cell (0 < count < min_count)."""
    if count is None or count != count:  # missing / NaN
        return "—"
    return f"<{min_count}" if 0 < count < min_count else f"{int(count):,}"
