"""The run's options as one typed object, validated once, up front.

Every message names the option, the value and the fix (scikit-learn's one-table style).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparkmice.kernels import METHODS
from sparkmice.kernels.logreg import SEPARATIONS

ENGINES = ("auto", "barrier", "perstep", "inprocess")
FORMATS = ("parquet", "delta")
KINDS = ("continuous", "binary", "nominal", "ordered")


class ConfigError(ValueError):
    """A bad option; the message says which and how to fix it."""


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
    visit_sequence: the variables to impute, in order (default: incomplete ones, column order).
    exclude: columns carried through untouched and never used as predictors.
    collapse_below: levels of a nominal variable seen in fewer rows than this share one
      category in the models (as predictor and as target; an imputed shared category becomes
      one of its levels in proportion to their counts); logged, never silent.
    donors: pmm donor pool size (R mice's `donors`). max_levels: most categories allowed for a
    nominal variable. blocks: number of row blocks, which with the seed defines the result
    (default: one per `rows_per_block` rows). rows_per_task: most rows one Spark task holds
    in memory (sets the tasks per chain; never changes the result). engine: "auto",
    "barrier", "perstep" or "inprocess". concurrency: chains run at once (default: as the
    cluster's slots allow).
    format: "parquet" or "delta". id_column: a column that identifies rows (else one is made):
      unique, non-null, integer or string (a string key's row id is a hash of it).
    inf_as_missing: treat +inf and -inf in numeric columns as missing (else they are refused).
    chains: run only these chains (1-based), e.g. for a fan-out of one task per imputation.
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
    visit_sequence: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    donors: int = 5
    max_levels: int = 500
    blocks: int | None = None
    rows_per_block: int = 100_000
    rows_per_task: int = 5_000_000
    collapse_below: int | None = None
    engine: str = "auto"
    concurrency: int | None = None
    format: str = "parquet"
    id_column: str | None = None
    chains: list[int] | None = None
    exchange_timeout: float = 1800.0
    inf_as_missing: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _positive_int("m", self.m)
        _positive_int("maxit", self.maxit)
        _positive_int("donors", self.donors)
        _positive_int("max_levels", self.max_levels)
        _positive_int("rows_per_block", self.rows_per_block)
        _positive_int("rows_per_task", self.rows_per_task)
        if self.collapse_below is not None:
            _positive_int("collapse_below", self.collapse_below)
        if self.blocks is not None:
            _positive_int("blocks", self.blocks)
        if self.concurrency is not None:
            _positive_int("concurrency", self.concurrency)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer; got {self.seed!r}.")
        if not isinstance(self.inf_as_missing, bool):
            raise ConfigError(f"inf_as_missing must be true or false; got {self.inf_as_missing!r}.")
        _choice("engine", self.engine, ENGINES)
        _choice("format", self.format, FORMATS)
        for name, method in self.method.items():
            if method not in METHODS and method != "":
                raise ConfigError(
                    f"method for column {name!r} must be one of {sorted(METHODS)} or '' "
                    f"(do not impute); got {method!r}."
                )
        for name, kind in self.kind.items():
            if kind not in KINDS:
                raise ConfigError(
                    f"kind for column {name!r} must be one of {list(KINDS)}; got {kind!r}."
                )
        for name, choice in self.separation.items():
            if choice not in SEPARATIONS:
                raise ConfigError(
                    f"separation for column {name!r} must be one of {list(SEPARATIONS)}; "
                    f"got {choice!r}."
                )
        if self.chains is not None:
            bad = [c for c in self.chains if not isinstance(c, int) or not 1 <= c <= self.m]
            if bad or not self.chains:
                raise ConfigError(
                    f"chains must be a non-empty list of chain numbers in 1..m={self.m}; "
                    f"got {self.chains!r}."
                )

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
            "visit_sequence": list(self.visit_sequence or []),
            "exclude": list(self.exclude),
        }
        if self.id_column:
            named["id_column"] = [self.id_column]
        return named

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> MiceConfig:
        known = {f.name for f in dataclasses.fields(cls)}
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


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1; got {value!r}.")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {list(allowed)}; got {value!r}.")


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where and what: `line L, column C: problem`; a tag (e.g. `!!python/object`) is named
    as such, since options are plain values (the file is never executed)."""
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem:
        problem += "; options are plain YAML values (numbers, strings, lists, mappings), no tags"
    return where + problem
