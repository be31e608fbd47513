"""The run's options as one typed object, validated once, up front.

`RULES` is the one table of what each option accepts, checked in one loop by
`MiceConfig.validate`; every message has one form, naming the option, what it must be
and the value given (scikit-learn's style): "The 'm' option must be an integer >= 1; got 0."
An option is one field of `MiceConfig` and one line of `RULES`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import warnings
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparkmice.expression import PredicateError, row_predicate
from sparkmice.io.run import FORMATS as OUTPUT_FORMATS
from sparkmice.kernels import METHODS
from sparkmice.kernels import quickpred as quickpred_rule
from sparkmice.kernels.logreg import SEPARATIONS
from sparkmice.kernels.polyreg import PRIORS as POLYREG_PRIORS

ENGINES = ("auto", "barrier", "perstep", "inprocess")
FORMATS = OUTPUT_FORMATS.keys()  # a live view: a format registered at run time is a choice
# options that change only how fast or where a run's chains run, never the imputations: a
# fan-out task or a resumed run may differ in these (sparkmice.identity compares the rest)
SPEED_ONLY_OPTIONS = frozenset(
    {"engine", "concurrency", "rows_per_task", "chains", "exchange_timeout"}
)
KINDS = ("continuous", "binary", "nominal", "ordered")
# R mice's named visit sequences (`visitSequence = "monotone"`, ...), see plan.visit_order
VISIT_ORDERS = ("roman", "arabic", "monotone", "revmonotone")
POST_STEPS = ("round", "squeeze")  # what `post` may do to a variable's imputations
# options renamed: old name -> new name (the old one still works, with a FutureWarning)
RENAMED = {"blocks": "row_blocks"}


class ConfigError(ValueError):
    """A bad option; the message says which and how to fix it."""


class RenamedOptionWarning(FutureWarning):
    """An option was given by its old name (`RENAMED`); it still works, for now."""


@dataclass
class MiceConfig:
    """Options of a run, named as in R mice where they exist there.

    m, maxit, seed: number of imputations (chains), iterations per chain, master seed.
    method: variable -> method ("pmm", "norm", "logreg", "polyreg", "sample", "mean", or ""
      to leave it unimputed). kind: variable -> "continuous" | "binary" | "nominal" |
      "ordered". levels: variable -> its levels in order (for an ordered variable).
    separation: binary variable -> "augment" (R mice's pseudo-rows, the default), "ridge"
      or "firth": the guard of its logistic model against separation.
    passive: name -> formula of other columns (R mice's `~I(...)`), e.g. "weight /
      height**2" or "age * smoke": recomputed after each imputation of its inputs, never
      imputed; an existing column gets only its missing cells, a new name is a derived
      predictor (in the imputation models, not in the output).
    predictors: variable -> list of its predictors (a row of R's predictorMatrix).
    quickpred: choose the predictors as R's quickpred (`sparkmice.quickpred`): true (R's
      defaults, mincor 0.1), a mapping of its arguments (mincor, minpuc, include, exclude,
      method), false (every variable predicts), or null (the default: quickpred with R's
      defaults when a variable has more than 25 candidate predictors, logged). An entry
      under `predictors` takes precedence.
    visit_sequence: the variables to impute, in order (default: incomplete ones, column
      order), or as R mice names an order: "roman" (column order), "arabic" (reversed),
      "monotone" (fewest missing first), "revmonotone" (most missing first).
    post: variable -> post-processing of its imputed cells after each of its imputations
      (R mice's `post`), e.g. {'chl': {'squeeze': [100, 300], 'round': 0}}: round to that
      many decimals, then squeeze into [lo, hi]; continuous variables only.
    exclude: columns carried through untouched and never used as predictors.
    collapse_below: levels of a nominal variable seen in fewer rows than this share one
      category in the models (as predictor and as target; an imputed shared category becomes
      one of its levels in proportion to their counts); logged, never silent.
    max_dummies: most indicator columns one nominal predictor brings into another variable's
      model (default 20; None: all K-1, as R mice). Beyond it the predictor's max_dummies
      most frequent categories keep their own indicator and the rest share one, in the
      designs of the other variables only: the predictor's own imputations and its values
      keep every level. Logged ("predictor levels pooled"). Without a cap a 300-level code
      puts 299 columns into every other model, which costs time quadratically and spends
      hundreds of coefficients on levels seen a few times each.
    polyreg_prior: "none" (polyreg's draw from the normal approximation to the augmented
      likelihood), "hierarchical" (a normal prior on every level's slopes, its scale per
      predictor estimated from the data; see kernels/polyreg.py) or "auto" (the default:
      hierarchical for a target with 10 or more levels, none below).
    donors: pmm donor pool size (R mice's `donors`). minbucket, cp: cart's least rows per
    leaf and complexity parameter (R mice's cart defaults 5 and 1e-4). ntree: rf's number of
    trees (R mice's default 10). max_levels: most categories allowed for a
    nominal variable. row_blocks: number of row blocks, which with the seed defines the
    result (default: one per `rows_per_block` rows; formerly `blocks`, R mice's word for
    blocks of variables: still read, with a warning). rows_per_task: most rows one Spark
    task holds in memory (sets the tasks per chain; never changes the result). engine: "auto",
    "barrier", "perstep" or "inprocess". concurrency: chains run at once (default: as the
    cluster's slots allow).
    format: "parquet", "delta" or another format registered in `sparkmice.io.run.FORMATS`.
    id_column: a column that identifies rows (else one is made): unique, non-null, integer
      or string (a string key's row id is a hash of it).
    inf_as_missing: treat +inf and -inf in numeric columns as missing (else they are refused).
    ignore: a boolean column (R mice's `ignore`), or a row predicate such as
      "split == 'test'" or "visit_date >= '2026-01-01'" (comparisons, and/or/not, column
      names, literals: parsed, never evaluated as Python; a missing value counts as false):
      its true rows are imputed but not fitted on (no model, pool or donor sees their
      observed values), e.g. a test set or rows that arrived later. where: variable -> a
      boolean column (a column of R's `where` matrix): its true cells are imputed too,
      their observed values replaced in the output (as R's complete()); unlike R, such a
      cell counts as missing in the sweeps (not fitted on, not a predictor value). Both
      boolean columns are carried through, never predictors, and the `where` column marks
      which observed cells the output holds imputations in (a predicate's columns are data).
    chains: run only these chains (1-based), e.g. for a fan-out of one task per imputation.
    private: columns whose levels never appear in config.json, events or reports (codes
      and counts instead). private_levels_above: a nominal column with more levels than
      this is private too (None: only the listed ones). min_cell_count: counts below it
      are shown as "<5" in events and reports (see `sparkmice.privacy`).
    """

    m: int = 5
    maxit: int = 5
    seed: int = 1
    method: dict[str, str] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)
    levels: dict[str, list] = field(default_factory=dict)
    separation: dict[str, str] = field(default_factory=dict)
    passive: dict[str, str] = field(default_factory=dict)
    predictors: dict[str, list[str]] = field(default_factory=dict)
    quickpred: bool | dict[str, Any] | None = None
    visit_sequence: list[str] | str | None = None
    post: dict[str, dict[str, Any]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    donors: int = 5
    minbucket: int = 5
    cp: float = 1e-4
    ntree: int = 10
    polyreg_prior: str = "auto"
    max_levels: int = 500
    row_blocks: int | None = None
    rows_per_block: int = 50_000
    rows_per_task: int = 5_000_000
    collapse_below: int | None = None
    max_dummies: int | None = 20
    engine: str = "auto"
    concurrency: int | None = None
    format: str = "parquet"
    id_column: str | None = None
    chains: list[int] | None = None
    exchange_timeout: float = 1800.0
    private: list[str] = field(default_factory=list)
    private_levels_above: int | None = 50
    min_cell_count: int = 5
    inf_as_missing: bool = False
    ignore: str | None = None
    where: dict[str, str] = field(default_factory=dict)
    blocks: InitVar[int | None] = None  # the old name of row_blocks (RENAMED)

    def __post_init__(self, blocks: int | None) -> None:
        if blocks is not None:
            self.row_blocks = _renamed("blocks", blocks, self.row_blocks, self)
        self.validate()

    def validate(self) -> None:
        """Check every option against its rule in RULES, in field order (a field without
        a rule is a KeyError here, so no option goes unchecked)."""
        for f in dataclasses.fields(self):
            RULES[f.name].check(f.name, getattr(self, f.name), self)

    @staticmethod
    def choices(name: str) -> tuple[str, ...]:
        """The values option `name` allows now (for the command line's `choices`)."""
        allowed = RULES[name].choices
        if allowed is None:
            raise ValueError(f"option {name!r} is not a choice among fixed values")
        return allowed()

    def chain_numbers(self) -> list[int]:
        return sorted(set(self.chains)) if self.chains else list(range(1, self.m + 1))

    def columns_named(self) -> dict[str, list[str]]:
        """Every column name the options mention, by option (to check against the input)."""
        named = {
            "method": list(self.method),
            "kind": list(self.kind),
            "levels": list(self.levels),
            "separation": list(self.separation),
            "predictors": list(self.predictors)
            + [p for ps in self.predictors.values() for p in ps if p not in self.passive],
            "quickpred": [c for k in ("include", "exclude") for c in self.quickpred.get(k, [])]
            if isinstance(self.quickpred, dict)
            else [],
            "visit_sequence": [] if isinstance(vs := self.visit_sequence, str) else vs or [],
            "post": list(self.post),
            "exclude": list(self.exclude),
            "private": list(self.private),
            "ignore": list(row_predicate(self.ignore).columns) if self.ignore else [],
            "where": list(self.where) + list(self.where.values()),
        }
        if self.id_column:
            named["id_column"] = [self.id_column]
        return named

    def excluded(self) -> list[str]:
        """Columns carried through untouched, never variables: `exclude`, and the columns
        of `ignore` and `where` (masks, not data; an `ignore` predicate reads data columns)."""
        ignore = row_predicate(self.ignore) if self.ignore else None
        masks = list(ignore.columns) if ignore and ignore.is_column else []
        masks += list(self.where.values())
        return list(dict.fromkeys([*self.exclude, *masks]))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> MiceConfig:
        known = {f.name for f in dataclasses.fields(cls)} | set(RENAMED)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; the options are {sorted(known)}.")
        return cls(**options)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> MiceConfig:
        try:
            with open(path, encoding="utf-8") as f:
                options = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigError(f"config file {path} cannot be read ({e.strerror}).") from None
        except yaml.YAMLError as e:
            problem = _yaml_problem(e)
            raise ConfigError(f"config file {path} is not valid YAML: {problem}.") from None
        if not isinstance(options, dict):
            raise ConfigError(f"config file {path} must hold a mapping of options.")
        options.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(options)


def _renamed(old: str, value: Any, given: Any, config: MiceConfig) -> Any:
    """The value of renamed option `old` for its new name (checked under the old name, so
    the message names what the user wrote), with a one-line FutureWarning."""
    new = RENAMED[old]
    RULES[new].check(old, value, config)
    if given is not None and given != value:
        raise ConfigError(
            f"The {old!r} option is the old name of {new!r}; both are given ({value!r} and "
            f"{given!r}): keep {new!r} only."
        )
    warnings.warn(
        f"The {old!r} option is now called {new!r} (it counts row blocks, not R mice's "
        f"blocks of variables); {old!r} still works for now: rename it in your config.",
        RenamedOptionWarning,
        stacklevel=_first_caller_outside(),
    )
    return value


def _first_caller_outside() -> int:
    """The `stacklevel` of the first frame outside sparkmice (the user's line)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "sparkmice"
    ):
        frame, level = frame.f_back, level + 1
    return level


@dataclass(frozen=True)
class Rule:
    """What one option accepts: `accepts(value, config)` and the words for it (`wants`,
    which may name other options as {m}, or a function giving them). `optional`: None is
    allowed too (the default). `per_column`: the option maps column names to values that
    each follow the rule; `example` is a right value of the whole option. `choices`: the
    allowed values, if a set of names; read when asked, so that a method or format
    registered at run time (kernels.METHODS, io.run.FORMATS) is one.
    """

    wants: str | Callable[[], str]
    accepts: Callable[[Any, Any], bool]
    choices: Callable[[], tuple[str, ...]] | None = None
    optional: bool = False
    per_column: bool = False
    example: str = ""

    def check(self, name: str, value: Any, config: Any) -> None:
        """Raise ConfigError unless `value` of option `name` follows the rule."""
        if value is None and self.optional:
            return
        wants = self.wants() if callable(self.wants) else self.wants.format_map(vars(config))
        if not self.per_column:
            if not self.accepts(value, config):
                raise _error(name, wants + (" or null" if self.optional else ""), value)
            return
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _error(name, f"a mapping of column name to {wants}, e.g. {self.example}", value)
        for column, entry in value.items():
            if not self.accepts(entry, config):
                raise _error(name, wants, entry, column)


def _error(name: str, wants: str, value: Any, column: str | None = None) -> ConfigError:
    where = f" for column {column!r}" if column is not None else ""
    return ConfigError(f"The {name!r} option{where} must be {wants}; got {value!r}.")


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(minimum: int) -> Rule:
    return Rule(f"an integer >= {minimum}", lambda v, _: _is_integer(v) and v >= minimum)


def seconds() -> Rule:
    return Rule(
        "a number of seconds > 0",
        # the ignore: typeshed's numbers.Real declares __lt__ and __le__ but not __gt__
        lambda v, _: (
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0  # type: ignore[operator]
        ),
    )


def number(minimum: float) -> Rule:
    return Rule(
        f"a number >= {minimum:g}",
        # the ignore: as in seconds()
        lambda v, _: (
            isinstance(v, numbers.Real)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and v >= minimum  # type: ignore[operator]
        ),
    )


def one_of(
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]],
    wants: str | Callable[[], str] | None = None,
) -> Rule:
    """One of `choices`: fixed, or a function reading a registry when the rule is checked."""
    allowed = choices if callable(choices) else lambda: choices
    return Rule(
        wants or (lambda: f"one of {list(allowed())}"), lambda v, _: v in allowed(), allowed
    )


def names(wants: str = "a list of column names") -> Rule:
    return Rule(
        wants, lambda v, _: isinstance(v, list | tuple) and all(isinstance(n, str) for n in v)
    )


def text(wants: str) -> Rule:
    return Rule(wants, lambda v, _: isinstance(v, str) and v != "")


def chain_list() -> Rule:
    return Rule(
        "a non-empty list of chain numbers in 1..m={m}",
        lambda v, c: (
            isinstance(v, list) and len(v) > 0 and all(_is_integer(k) and 1 <= k <= c.m for k in v)
        ),
    )


def optional(rule: Rule) -> Rule:
    return dataclasses.replace(rule, optional=True)


def per_column(rule: Rule, example: str) -> Rule:
    return dataclasses.replace(rule, per_column=True, example=example)


def _finite_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _post_steps(v: Any) -> bool:
    """A mapping of `round: digits` (an integer) and/or `squeeze: [lo, hi]` (lo <= hi)."""
    if not isinstance(v, dict) or not v or set(v) - set(POST_STEPS):
        return False
    squeeze = v.get("squeeze", [0, 0])
    return (
        _is_integer(v.get("round", 0))
        and isinstance(squeeze, list | tuple)
        and len(squeeze) == 2
        and all(_finite_number(b) for b in squeeze)
        and squeeze[0] <= squeeze[1]
    )


def _row_predicate(text: str) -> bool:
    """Whether `text` parses as a row predicate; ConfigError naming the piece otherwise."""
    try:
        row_predicate(text)
    except PredicateError as err:
        raise ConfigError(f"The 'ignore' option {err}") from None
    return True


RULES: dict[str, Rule] = {
    "m": integer(1),
    "maxit": integer(1),
    "seed": integer(0),
    "method": per_column(
        one_of(lambda: (*METHODS, ""), lambda: f"one of {sorted(METHODS)} or '' (do not impute)"),
        "{'bp': 'pmm'}",
    ),
    "kind": per_column(one_of(KINDS), "{'sev': 'ordered'}"),
    "levels": per_column(
        Rule("a list of its levels in order", lambda v, _: isinstance(v, list | tuple)),
        "{'sev': ['mild', 'severe']}",
    ),
    "separation": per_column(one_of(SEPARATIONS), "{'smoke': 'firth'}"),
    "passive": per_column(text("a formula of other columns"), "{'bmi': 'weight / height**2'}"),
    "predictors": per_column(names(), "{'bp': ['age', 'smoke']}"),
    "quickpred": Rule(quickpred_rule.OPTION_WORDS, lambda v, _: quickpred_rule.valid(v)),
    "visit_sequence": Rule(
        f"a list of column names or null, or one of {list(VISIT_ORDERS)}",
        lambda v, _: v is None or v in VISIT_ORDERS or names().accepts(v, None),
    ),
    "post": per_column(
        Rule(
            "a mapping of 'round' (decimals, an integer) and/or 'squeeze' ([lo, hi], lo <= hi)",
            lambda v, _: _post_steps(v),
        ),
        "{'chl': {'squeeze': [100, 300], 'round': 0}}",
    ),
    "exclude": names(),
    "donors": integer(1),
    "minbucket": integer(1),
    "cp": number(0),
    "ntree": integer(1),
    "polyreg_prior": one_of(POLYREG_PRIORS),
    "max_levels": integer(1),
    "row_blocks": optional(integer(1)),
    "rows_per_block": integer(1),
    "rows_per_task": integer(1),
    "collapse_below": optional(integer(1)),
    "max_dummies": optional(integer(1)),
    "engine": one_of(ENGINES),
    "concurrency": optional(integer(1)),
    "format": one_of(lambda: tuple(OUTPUT_FORMATS)),
    "id_column": optional(text("a column name")),
    "chains": optional(chain_list()),
    "exchange_timeout": seconds(),
    "private": names(),
    "private_levels_above": optional(integer(1)),
    "min_cell_count": integer(1),
    "inf_as_missing": Rule("true or false", lambda v, _: isinstance(v, bool)),
    "ignore": optional(
        Rule(
            "a boolean column's name or a row predicate such as \"split == 'test'\" (its true "
            "rows are not fitted on)",
            lambda v, _: isinstance(v, str) and v != "" and _row_predicate(v),
        )
    ),
    "where": per_column(
        text("a boolean column's name (its true cells are imputed)"), "{'bp': 'bp_where'}"
    ),
}


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where and what: `line L, column C: problem`; a tag (e.g. `!!python/object`) is named
    as such, since options are plain values (the file is never executed)."""
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem:
        problem += "; options are plain YAML values (numbers, strings, lists, mappings), no tags"
    return where + problem
