"""From the input's schema and column summaries to the resolved plan of a run: each
variable's kind, levels and method, the predictor matrix and the visit sequence.

Runs on the driver before any imputation job; every bad input is refused here with a
message that names the column and the fix.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from sparkmice import ordinal, privacy
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.expression import PredicateError, row_predicate
from sparkmice.kernels import DEFAULT_METHOD, METHODS, quickpred
from sparkmice.names import RESERVED_COLUMNS

RESERVED = RESERVED_COLUMNS
log = logging.getLogger("sparkmice")


class InputError(ValueError):
    """The input data cannot be imputed as asked; the message names the column and fix."""


@dataclass(frozen=True)
class ColumnSummary:
    """What the driver learns about a column from one aggregation pass."""

    name: str
    type: pa.DataType
    n: int
    n_missing: int
    distinct: tuple[Any, ...] | None  # sorted distinct observed values, when few enough
    n_distinct: int  # exact if `distinct` is not None, else a lower bound / estimate
    ordered: bool = False  # an ordered categorical; `distinct` is then in its order
    counts: tuple[int, ...] | None = None  # observed rows of each distinct value
    n_infinite: int = 0  # cells holding +inf or -inf


@dataclass(frozen=True)
class Variable:
    name: str
    index: int
    kind: str  # "continuous" | "binary" | "nominal"
    type: pa.DataType
    levels: tuple[Any, ...] | None
    n_missing: int
    derived: bool = False  # a passive column not in the input (a predictor only)
    counts: tuple[int, ...] | None = None  # observed rows per level
    groups: tuple[int, ...] | None = None  # model category of each level, if rare ones share
    # category of each level in other variables' designs, when max_dummies pools some
    predictor_groups: tuple[int, ...] | None = None

    @property
    def n_categories(self) -> int:
        """Categories of the models: levels, or fewer when rare levels are collapsed."""
        return max(self.groups) + 1 if self.groups is not None else self.n_levels

    @property
    def n_levels(self) -> int:
        return len(self.levels) if self.levels is not None else 0

    def known_levels(self) -> tuple[Any, ...]:
        """The levels of a categorical variable; asking a continuous one is a bug."""
        if self.levels is None:
            raise TypeError(f"column {self.name!r} is {self.kind} and has no levels")
        return self.levels

    @property
    def categorical(self) -> bool:
        return self.kind != "continuous"


@dataclass(frozen=True)
class Plan:
    """The resolved run: what the sampler and the engines need, and what is written beside
    the output (`config.json`)."""

    variables: tuple[Variable, ...]
    method: dict[str, str]
    predictors: dict[str, tuple[str, ...]]
    visit_sequence: tuple[str, ...]
    passthrough: tuple[str, ...]
    passive: dict[str, str]
    n_rows: int
    n_blocks: int
    config: MiceConfig
    events: tuple[dict[str, Any], ...] = field(default=())

    def variable(self, name: str) -> Variable:
        return self.variables[self.index[name]]

    @property
    def index(self) -> dict[str, int]:
        return {v.name: v.index for v in self.variables}

    @property
    def imputed_columns(self) -> tuple[Variable, ...]:
        """The input columns whose missing cells (and config `where`'s cells) the run fills
        (imputed or passive), in column order: the columns of R's `where` that hold a True."""
        return tuple(
            v
            for v in self.variables
            if not v.derived
            and (v.n_missing or v.name in self.config.where)
            and self.method.get(v.name, "") != ""
        )

    @functools.cached_property
    def private(self) -> frozenset[str]:
        """Columns whose levels are private (`sparkmice.privacy`)."""
        c = self.config
        return frozenset(
            v.name
            for v in self.variables
            if privacy.is_private(v.name, v.kind, v.n_levels, c.private, c.private_levels_above)
        )

    def level_label(self, v: Variable, index: int) -> str:
        """Level `index` of `v` as events name it: its value, or its code when private."""
        if v.name in self.private:
            return privacy.level_code(index, v.n_levels)
        return str(v.known_levels()[index])

    def _levels_entry(self, v: Variable) -> dict[str, Any]:
        """What config.json says of v's levels: the list, or for a private column only its
        length and digest (enough to tell two runs apart, nothing to read a level from)."""
        if v.levels is None:
            return {"levels": None}
        if v.name not in self.private:
            return {"levels": list(v.levels)}
        return {
            "levels": None,
            "private": True,
            "n_levels": v.n_levels,
            "levels_sha256": privacy.levels_digest(v.levels),
        }

    def to_dict(self) -> dict[str, Any]:
        options = self.config.to_dict()
        options["levels"] = {  # declared levels of a private column: digest only
            name: levels if name not in self.private else privacy.levels_digest(levels)
            for name, levels in options["levels"].items()
        }
        return {
            "m": self.config.m,
            "maxit": self.config.maxit,
            "seed": self.config.seed,
            "n_rows": self.n_rows,
            "n_blocks": self.n_blocks,
            "variables": [
                {
                    "name": v.name,
                    "kind": v.kind,
                    "type": str(v.type),
                    **self._levels_entry(v),
                    "method": self.method.get(v.name, ""),
                    "n_missing": v.n_missing,
                }
                for v in self.variables
            ],
            "predictor_matrix": {k: list(p) for k, p in self.predictors.items()},
            "visit_sequence": list(self.visit_sequence),
            "passthrough": list(self.passthrough),
            "passive": dict(self.passive),
            "config": options,
        }


def check_schema(schema: pa.Schema, config: MiceConfig) -> None:
    """Refuse reserved and repeated names and unknown columns in the config; no data is
    read."""
    names = schema.names
    check_unique_names(names)
    for name in RESERVED:
        if name in names:
            raise InputError(
                f"input column {name!r} uses a name sparkmice reserves for its output; "
                f"rename it before imputing."
            )
    for option, cols in config.columns_named().items():
        for c in cols:
            if c not in names:
                raise ConfigError(
                    f"{option} names column {c!r}, which is not in the input; "
                    f"the columns are {names}."
                )
    ignore = row_predicate(config.ignore) if config.ignore else None
    masks = [("ignore", ignore.columns[0])] if ignore and ignore.is_column else []
    masks += [(f"where for {v!r}", c) for v, c in config.where.items()]
    if ignore and not ignore.is_column:  # its types, on no rows: before any job
        try:
            ignore.mask(schema.empty_table())
        except PredicateError as err:
            raise InputError(f"ignore {err}") from None
    for option, column in masks:
        t = schema.field(column).type
        if not pa.types.is_boolean(t):
            raise InputError(
                f"column {column!r} ({option}) has type {t}; it must be boolean (true: "
                f"{'not fitted on' if option == 'ignore' else 'impute the cell'}): cast it."
            )
    if config.id_column:
        t = schema.field(config.id_column).type
        if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise InputError(
                f"id_column {config.id_column!r} has type {t}; a row id must be an integer or "
                f"string key: convert it, or drop id_column to number the rows by position."
            )
    for f in schema:
        if f.name in config.excluded() or f.name == config.id_column:
            continue
        if not supported_type(f.type):
            raise InputError(
                f"column {f.name!r} has type {f.type}, which sparkmice cannot impute or use "
                f"as a predictor; convert it to a number or string, or list it under `exclude`."
            )


def check_unique_names(names: Iterable[Any]) -> None:
    """Refuse an input with two columns of one name (a join's, or a frame's): options,
    models and the output name columns, so one of the two would be lost."""
    seen: set[Any] = set()
    for name in names:
        if name in seen:
            raise InputError(
                f"input column {name!r} appears more than once; rename or drop all but one "
                f"before imputing (after a join, select or alias the columns)."
            )
        seen.add(name)


def check_rows(n_rows: int) -> None:
    """Refuse an input without rows (an empty folder, a filter that keeps none)."""
    if n_rows == 0:
        raise InputError(
            "the input has no rows: nothing to impute; check its path, table or filter."
        )


def check_id_counts(name: str, n_rows: int, n_null: int, n_distinct: int, n_ids: int) -> None:
    """Refuse an id column with missing or repeated keys (`n_distinct` distinct keys), or
    string keys whose row ids collide (`n_ids` distinct row ids); one pass counted them."""
    if n_null:
        raise InputError(
            f"id_column {name!r} is missing in {n_null} row(s); every row needs its id: fill "
            f"them, or drop id_column to number the rows by position."
        )
    if n_distinct < n_rows:
        raise InputError(
            f"id_column {name!r} has repeated values ({n_rows - n_distinct} row(s) repeat an "
            f"earlier id); it must identify rows uniquely."
        )
    if n_ids < n_distinct:
        raise InputError(
            f"id_column {name!r}: two string keys give the same 60-bit row id (a hash "
            f"collision); use an integer key column instead."
        )


def is_temporal(t: pa.DataType) -> bool:
    """A date or timestamp: carried through, or imputed as a number with kind 'continuous'."""
    return pa.types.is_date(t) or pa.types.is_timestamp(t)


def supported_type(t: pa.DataType) -> bool:
    return (
        is_temporal(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_dictionary(t)
    )


def _detect_kind(s: ColumnSummary) -> str:
    numeric = (
        pa.types.is_integer(s.type) or pa.types.is_floating(s.type) or pa.types.is_decimal(s.type)
    )
    if numeric:
        return "binary" if s.n_distinct == 2 else "continuous"
    if s.n_distinct == 2:
        return "binary"
    return "ordered" if s.ordered else "nominal"


def _level_counts(levels: tuple[Any, ...], s: ColumnSummary) -> tuple[int, ...]:
    found = dict(zip(s.distinct or (), s.counts or (), strict=False))
    return tuple(int(found.get(v, 0)) for v in levels)


def _collapse(
    name: str,
    levels: tuple,
    counts: tuple[int, ...],
    below: int,
    config: MiceConfig,
    events: list,
) -> tuple[int, ...] | None:
    """Model category of each level: levels seen in fewer than `below` (collapse_below)
    rows share one (placed where the first of them is). None when fewer than two levels are
    rare. The event names private levels by code and small counts as "<min_cell_count"."""
    rare = [i for i, c in enumerate(counts) if c < below]
    if len(rare) < 2 or len(rare) == len(levels):
        return None
    groups = _numbered([-1 if i in rare else i for i in range(len(levels))])
    private = privacy.is_private(
        name, "nominal", len(levels), config.private, config.private_levels_above
    )
    detail = ", ".join(
        f"{privacy.level_code(i, len(levels)) if private else levels[i]} "
        f"({privacy.count_text(counts[i], config.min_cell_count)})"
        for i in rare
    )
    events.append(
        {
            "chain": 0,
            "iteration": 0,
            "variable": name,
            "event": "levels collapsed",
            "detail": f"{detail}: fewer than collapse_below={below} rows, one model category",
        }
    )
    return tuple(groups)


def _hint_ordered(name: str, levels: tuple, config: MiceConfig, events: list) -> None:
    """Log (and record as an event) that an incomplete nominal column's levels look like
    an ordered scale, with the config line that declares it; the method stays as it is.
    Private columns' levels are never shown, so they get no hint."""
    if privacy.is_private(name, "nominal", len(levels), config.private,
                          config.private_levels_above):  # fmt: skip
        return
    hint = ordinal.ordered_hint(name, levels)
    if hint:
        log.info(f"{name}: {hint}")
        events.append(
            {"chain": 0, "iteration": 0, "variable": name, "event": "looks ordered",
             "detail": hint}
        )  # fmt: skip


def _numbered(labels: list[int]) -> tuple[int, ...]:
    """Labels renumbered 0, 1, ... in order of first appearance: levels with equal labels
    share a category, placed where the first of them is."""
    codes: dict[int, int] = {}
    return tuple(codes.setdefault(label, len(codes)) for label in labels)


def _cap_dummies(
    name: str,
    counts: tuple[int, ...],
    groups: tuple[int, ...] | None,
    cap: int,
    config: MiceConfig,
    events: list,
) -> tuple[int, ...] | None:
    """Category of each level of a nominal predictor in other variables' designs: with more
    than `cap` (max_dummies) indicators, its `cap` most frequent categories (ties: the
    earlier level) keep their own and the rest share one, which is the reference when it
    holds level 0 — so exactly `cap` indicators. None when it has `cap` or fewer. Its own
    model (as a target) and its values are unchanged; logged without naming levels."""
    categories = groups or tuple(range(len(counts)))
    n_categories = max(categories) + 1
    if n_categories - 1 <= cap:
        return None
    rows = [0] * n_categories
    for category, count in zip(categories, counts, strict=True):
        rows[category] += count
    kept = set(sorted(range(n_categories), key=lambda c: -rows[c])[:cap])
    pooled = [c for c in range(n_categories) if c not in kept]
    pooled_rows = sum(rows[c] for c in pooled)
    events.append(
        {
            "chain": 0,
            "iteration": 0,
            "variable": name,
            "event": "predictor levels pooled",
            "detail": f"as a predictor of other variables: {len(pooled)} of its {n_categories} "
            f"categories ({privacy.count_text(pooled_rows, config.min_cell_count)} observed "
            f"rows) share one indicator, the {cap} most frequent keep their own "
            f"(max_dummies={cap}); its own imputations keep every level",
        }
    )
    return _numbered([-1 if c in pooled else c for c in categories])


def _passive_variables(
    config: MiceConfig, variables: list[Variable], n_rows: int
) -> dict[str, set[str]]:
    """Add the new passive columns to `variables`; check every formula; return each passive
    column's inputs, direct and through other passive columns (R mice's circularity rule:
    a variable never predicts itself through a passive column)."""
    from sparkmice.kernels import passive

    known = {v.name: v for v in variables}
    closure: dict[str, set[str]] = {}
    for name, formula in config.passive.items():
        try:
            used = passive.inputs(formula)
        except passive.ExpressionError as e:
            raise ConfigError(f"passive formula for {name!r}: {e}.") from None
        for c in used:
            if c not in known or c == name:
                raise ConfigError(
                    f"passive formula for {name!r} reads {c!r}, which is not a column "
                    f"(or a passive column defined before it); the columns are {list(known)}."
                )
            if known[c].kind in ("nominal", "ordered"):
                raise ConfigError(
                    f"passive formula for {name!r} reads the categorical column {c!r}; "
                    f"formulas take numbers and binary columns only."
                )
        closure[name] = set(used).union(*(closure.get(c, set()) for c in used))
        if name in known:
            if known[name].kind != "continuous":
                raise ConfigError(
                    f"passive column {name!r} must be numeric, not {known[name].kind}."
                )
            continue
        v = Variable(name, len(variables), "continuous", pa.float64(), None, n_rows, derived=True)
        variables.append(v)
        known[name] = v
    return closure


def _carry_temporal(f: pa.Field, config: MiceConfig, events: list) -> None:
    """A date or timestamp column not declared continuous: carried through unimputed and
    not a predictor, logged; another declared kind is refused."""
    if f.name in config.kind:
        raise ConfigError(
            f"kind for column {f.name!r} is {config.kind[f.name]!r} but it holds "
            f"{f.type} values; a date or timestamp is imputed as 'continuous' only."
        )
    events.append(
        {
            "chain": 0,
            "iteration": 0,
            "variable": f.name,
            "event": "carried through",
            "detail": f"{f.type}: not imputed, not a predictor; set kind {f.name}: "
            f"continuous to impute it as a number",
        }
    )


def block_count(config: MiceConfig, n_rows: int) -> int:
    """How many row blocks (which with the seed define the result): `row_blocks`, or one
    per `rows_per_block` rows."""
    return config.row_blocks or max(1, math.ceil(n_rows / config.rows_per_block))


def visit_order(
    sequence: list[str] | str | None, variables: list[Variable], method: dict[str, str]
) -> tuple[str, ...]:
    """The variables imputed, in the order they are visited: an explicit list (its imputed
    variables), or R mice's named orders (`check.visitSequence`): "roman" (the default,
    column order), "arabic" (reversed), "monotone" (increasing number of missing cells, ties
    in column order), "revmonotone" (monotone reversed)."""
    imputed = [v for v in variables if method.get(v.name) not in (None, "", "passive")]
    if isinstance(sequence, list | tuple):
        return tuple(n for n in sequence if method.get(n) not in (None, "", "passive"))
    names = [v.name for v in imputed]
    monotone = [v.name for v in sorted(imputed, key=lambda v: v.n_missing)]  # stable
    orders = {
        None: names,
        "roman": names,
        "arabic": names[::-1],
        "monotone": monotone,
        "revmonotone": monotone[::-1],
    }
    return tuple(orders[sequence])


def check_post(config: MiceConfig, variables: dict[str, Variable], method: dict[str, str]) -> None:
    """`post` rounds and squeezes numbers: only imputed continuous variables take it."""
    for name in config.post:
        v = variables.get(name)  # None: excluded, the id column or carried through
        imputed = v is not None and method.get(name) not in ("", "passive")
        kind = v.kind if v is not None and imputed else "not imputed"
        if kind != "continuous":
            raise ConfigError(
                f"post is set for column {name!r}, which is {kind}; post (round, squeeze) "
                f"applies to imputed continuous variables only: remove it for {name!r}."
            )


def resolve(
    schema: pa.Schema,
    summaries: list[ColumnSummary],
    config: MiceConfig,
    correlate: Callable[[Sequence[Variable]], quickpred.Association] | None = None,
) -> Plan:
    """Resolve kinds, levels, methods, predictors and visit sequence, or refuse the input.
    `correlate`: the data's correlations for quickpred (`sparkmice.predictors`), one pass
    over the data, made only when a target's predictors are chosen that way."""
    check_schema(schema, config)
    if summaries:
        check_rows(max(c.n for c in summaries))
    events: list[dict[str, Any]] = []
    by_name = {s.name: s for s in summaries}
    skip = set(config.excluded()) | ({config.id_column} if config.id_column else set())
    variables: list[Variable] = []
    for f in schema:
        if f.name in skip:
            continue
        if is_temporal(f.type) and config.kind.get(f.name) != "continuous":
            _carry_temporal(f, config, events)
            skip.add(f.name)
            continue
        s = by_name[f.name]
        if s.n_infinite:
            raise InputError(
                f"column {f.name!r} holds {s.n_infinite} infinite value(s) (inf or -inf); "
                f"replace them, or set inf_as_missing: true to impute them as missing."
            )
        if s.n_missing == s.n:
            raise InputError(
                f"column {f.name!r} has no observed value; drop it or list it under `exclude`."
            )
        kind = config.kind.get(f.name) or _detect_kind(s)
        if kind == "continuous" and not (
            is_temporal(f.type)
            or pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_decimal(f.type)
        ):
            raise ConfigError(
                f"kind for column {f.name!r} is 'continuous' but its type is {f.type}; "
                f"declare it 'nominal' or convert it to numbers."
            )
        levels: tuple[Any, ...] | None = None
        counts: tuple[int, ...] | None = None
        groups: tuple[int, ...] | None = None
        predictor_groups: tuple[int, ...] | None = None
        if kind != "continuous":
            observed = s.n - s.n_missing
            per_row = s.n_distinct >= observed > 2  # a level per observed row
            if per_row:
                hint = "; it looks like an identifier: list it under `exclude`, or set id_column"
            else:
                hint = " (an identifier? list it under `exclude`, or set id_column)"
            if s.distinct is None or len(s.distinct) > config.max_levels:
                raise InputError(
                    f"column {f.name!r} has {s.n_distinct} or more levels, more than "
                    f"max_levels={config.max_levels}; raise max_levels, declare its kind "
                    f"'continuous', or list it under `exclude`{hint}."
                )
            if per_row:
                raise InputError(
                    f"column {f.name!r} has a different value in each of its {observed} "
                    f"observed rows{hint}."
                )
            levels = tuple(s.distinct)
            if f.name in config.levels:
                declared = tuple(config.levels[f.name])
                unknown = sorted(set(levels) - set(declared), key=str)
                if unknown:
                    raise ConfigError(
                        f"levels for column {f.name!r} miss the observed value(s) {unknown}; "
                        f"list every level, in order."
                    )
                levels = declared
            if kind == "binary" and len(levels) != 2:
                raise ConfigError(
                    f"kind for column {f.name!r} is 'binary' but it has {len(levels)} levels; "
                    f"declare it 'nominal'."
                )
            counts = _level_counts(levels, s)
            if kind == "nominal" and config.collapse_below is not None:
                groups = _collapse(f.name, levels, counts, config.collapse_below, config, events)
            if kind == "nominal" and s.n_missing and f.name not in config.kind:
                _hint_ordered(f.name, levels, config, events)
            if kind == "nominal" and config.max_dummies is not None:
                predictor_groups = _cap_dummies(
                    f.name, counts, groups, config.max_dummies, config, events
                )
        variables.append(
            Variable(
                f.name,
                len(variables),
                kind,
                f.type,
                levels,
                s.n_missing,
                False,
                counts,
                groups,
                predictor_groups,
            )
        )

    n_rows = max(s.n for s in summaries) if summaries else 0
    passive_inputs = _passive_variables(config, variables, n_rows)
    names = [v.name for v in variables]
    method: dict[str, str] = {}
    for v in variables:
        if v.name in config.passive:
            method[v.name] = "passive"
            continue
        chosen = config.method.get(v.name)
        to_impute = v.n_missing or v.name in config.where  # `where` cells are imputed too
        if chosen is None:
            chosen = DEFAULT_METHOD[v.kind] if to_impute else ""
        if chosen and v.kind not in METHODS[chosen].kinds:
            raise ConfigError(
                f"method {chosen!r} for column {v.name!r} does not fit its kind {v.kind!r}; "
                f"use one of {[m for m, mod in METHODS.items() if v.kind in mod.kinds]}."
            )
        if chosen and not to_impute:
            chosen = ""  # complete variables are never imputed (as R mice)
        method[v.name] = chosen

    for name in config.separation:
        if method.get(name) != "logreg":
            raise ConfigError(
                f"separation is set for column {name!r}, whose method is "
                f"{method.get(name)!r}; it applies to logreg (binary) variables only."
            )

    visit = visit_order(config.visit_sequence, variables, method)
    check_post(config, {v.name: v for v in variables}, method)

    unimputed = {v.name for v in variables if v.n_missing and not method[v.name]}
    predictors: dict[str, tuple[str, ...]] = {}
    quick, found = quickpred.choose(
        config.quickpred,
        [v.name for v in variables if not v.derived],
        [v.name for v in variables if v.derived],
        [n for n in visit if n not in config.predictors],
        functools.partial(correlate, variables) if correlate else None,
    )
    events += found
    for name in visit:
        wanted = config.predictors.get(name, quick.get(name, [n for n in names if n != name]))
        chosen_preds = []
        for p in wanted:
            if p == name:
                continue
            if p in unimputed:
                events.append(
                    {
                        "chain": 0,
                        "iteration": 0,
                        "variable": name,
                        "event": "predictor removed",
                        "detail": f"{p}: incomplete and not imputed",
                    }
                )
                continue
            if p in skip:
                continue
            if name in passive_inputs.get(p, ()):
                events.append(
                    {
                        "chain": 0,
                        "iteration": 0,
                        "variable": name,
                        "event": "predictor removed",
                        "detail": f"{p}: passive, derived from {name}",
                    }
                )
                continue
            chosen_preds.append(p)
        if METHODS[method[name]].uses_predictors and not chosen_preds and name not in quick:
            raise ConfigError(
                f"column {name!r} has no predictors left for method {method[name]!r}; add "
                f"predictors for it under `predictors`, or use method 'sample'."
            )
        predictors[name] = tuple(chosen_preds)

    n_blocks = block_count(config, n_rows)
    passthrough = tuple(n for n in schema.names if n in skip)
    return Plan(
        tuple(variables),
        method,
        predictors,
        visit,
        passthrough,
        dict(config.passive),
        n_rows,
        n_blocks,
        config,
        tuple(events),
    )
