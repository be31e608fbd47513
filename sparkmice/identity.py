"""What makes two runs the same run, so that they may write into one run folder.

A fan-out task (`--chains`) may add chains to DIR, and a resumed run may continue them,
only if every option that changes the imputations is the same (all of MiceConfig but
`config.SPEED_ONLY_OPTIONS`), the resolved plan is the same, the input has the same
fingerprint (rows, and per column its type, missing count and levels with their counts, as
a digest), and the run folder's layout version is this one. A resumed run may raise maxit.

A folder written before an option was renamed (`config.RENAMED`: `blocks` is now
`row_blocks`) or before an option existed is read as if written now: the old name counts
as the new one, and a missing option as its default (which is what that run did).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sparkmice.config import RENAMED, SPEED_ONLY_OPTIONS, MiceConfig
from sparkmice.names import FORMAT_VERSION
from sparkmice.plan import Plan


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_identity(plan: Plan) -> dict[str, Any]:
    """The run's identity as stored in config.json."""
    options = {k: v for k, v in plan.config.to_dict().items() if k not in SPEED_ONLY_OPTIONS}
    columns = {
        v.name: {
            "type": str(v.type),
            "n_missing": v.n_missing,
            "levels": None if v.levels is None else _digest([list(v.levels), list(v.counts or ())]),
        }
        for v in plan.variables
        if not v.derived
    }
    return {
        "format_version": FORMAT_VERSION,
        "options": options,
        "plan": {
            "n_blocks": plan.n_blocks,
            "method": dict(plan.method),
            "predictors": {k: list(p) for k, p in plan.predictors.items()},
            "visit_sequence": list(plan.visit_sequence),
            "passthrough": list(plan.passthrough),
        },
        "input": {"n_rows": plan.n_rows, "columns": columns},
    }


def run_id(identity: dict[str, Any]) -> str:
    """A digest of the identity that a resumed run keeps (maxit left out)."""
    options = {k: v for k, v in identity.get("options", {}).items() if k != "maxit"}
    return _digest({**identity, "options": options})


def differences(old: dict[str, Any] | None, new: dict[str, Any], resume: bool) -> list[str]:
    """What differs between a folder's run (`old`, its identity) and this one, named:
    options by name, the plan's parts, the input's row count and columns."""
    if not old or old.get("format_version") != new["format_version"]:
        found = (old or {}).get("format_version", "none")
        return [f"run folder format version ({found} there, {new['format_version']} here)"]
    out = []
    defaults = MiceConfig().to_dict()
    old_options = {RENAMED.get(k, k): v for k, v in old["options"].items()}
    for name in sorted(set(old_options) | set(new["options"])):
        if name == "maxit" and resume:
            continue
        a, b = old_options.get(name, defaults.get(name)), new["options"].get(name)
        if a != b:
            out.append(f"{name} ({a!r} there, {b!r} here)")
    out += [f"plan {k}" for k in new["plan"] if old["plan"].get(k) != new["plan"][k]]
    a, b = old["input"], new["input"]
    if a["n_rows"] != b["n_rows"]:
        out.append(f"input rows ({a['n_rows']} there, {b['n_rows']} here)")
    changed = sorted(
        c
        for c in set(a["columns"]) | set(b["columns"])
        if a["columns"].get(c) != b["columns"].get(c)
    )
    if changed:
        out.append(f"input column(s) {changed}")
    return out
