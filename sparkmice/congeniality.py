"""Does the imputation model cover the analysis model? `check_congeniality` says what is
left out and how to add it.

Imputation and analysis are *congenial* when one joint model implies both (Meng 1994).
What the imputation models leave out, the imputed values do not carry, and the pooled
estimate of it is biased — toward zero for a left-out outcome or interaction. For each
imputed variable that the analysis uses (or that a passive column of the formula is
computed from) the check reads the analysis formula (formulaic/patsy syntax, as
`sparkmice pool` takes it) and lists:

* formula variables missing from its predictors — above all the outcome (Moons et al.
  2006); also a method that uses no predictors (sample, mean) or a formula variable that
  is incomplete and not imputed;
* interactions not represented (White, Royston & Wood 2011, §6.3; von Hippel 2009): an
  imputed x of a term x:z needs the outcome times z among its predictors (y*z); an imputed
  variable outside the term needs the term itself (x*z); where z is categorical and
  complete, imputing x within the levels of z is the alternative;
* nonlinear terms not represented: f(x) of another variable must be a predictor itself;
  f(x) of the imputed x cannot be fixed by predictors: impute the term as "just another
  variable" (von Hippel 2009; Seaman, Bartlett & White 2012), or derive it passively from x
  imputed by pmm (White et al. 2011, §6.2), both approximations.

"Represented" is decided numerically, not by spelling: the needed columns, evaluated on
random values of the variables, must lie in the span of the imputation model's design
(intercept, predictors, dummies, passive columns). So a passive `(age - 50) * smoke` covers
`age:smoke`, and `scale(bmi)` counts as linear in bmi. Each finding comes with a fix in
the config's vocabulary (`passive`, `predictors`, `method`, `exclude`), and the report
merges them into one suggested change of the config.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeGuard

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix

from sparkmice.analysis.design import formula_variables
from sparkmice.kernels import DEFAULT_METHOD, METHODS
from sparkmice.kernels import passive as passive_kernel
from sparkmice.privacy import level_code

__all__ = [
    "CongenialityReport",
    "check_congeniality",
    "check_congeniality_dir",
    "read_run_config",
    "warn_congeniality",
]

FINDING_COLUMNS = ("variable", "term", "problem", "fix")
_CATEGORICAL = ("nominal", "ordered")
_NP_FUNCTIONS = {"log": "log", "exp": "exp", "sqrt": "sqrt", "abs": "abs", "fabs": "abs"}
_TOLERANCE = 1e-6  # relative residual below which a column counts as in the design's span


@dataclass(frozen=True)
class CongenialityReport:
    """Findings of `check_congeniality`.

    findings: one row per problem (variable, term, problem, fix); `ok` when there is none.
    changes: the fixes merged into config options to add (`passive`, `predictors`,
    `method`, and `exclude` entries to remove under `exclude_remove`).
    checked: the imputed variables whose models were checked.
    """

    formula: str
    findings: pd.DataFrame
    changes: dict[str, Any] = field(default_factory=dict)
    checked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.findings.empty

    def __str__(self) -> str:
        head = f"congeniality of the imputation models with {self.formula!r} (Meng 1994)"
        checked = ", ".join(self.checked) or "none (the formula uses no imputed variable)"
        lines = [head, f"imputed variables checked: {checked}"]
        if self.ok:
            lines.append(
                "ok: their models include the formula's variables, interactions and "
                "nonlinear terms."
            )
            return "\n".join(lines)
        lines.append(f"{len(self.findings)} finding(s):")
        for row in self.findings.itertuples(index=False):
            lines.append(f"- {row.variable} / {row.term}: {row.problem}")
            lines.append(f"    fix: {row.fix}")
        if self.changes:
            lines.append("suggested config changes:")
            lines.extend("  " + line for line in _changes_yaml(self.changes))
        return "\n".join(lines)


def _changes_yaml(changes: dict[str, Any]) -> list[str]:
    """The suggested changes as YAML lines: mappings in block style, lists inline."""

    def scalar(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        text = str(value)
        return text if re.fullmatch(r"\w+", text) else json.dumps(text)

    lines = []
    for key, value in changes.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {scalar(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {scalar(value)}")
    return lines


@dataclass(frozen=True)
class _Run:
    """What the check needs from a plan or its `config.json`."""

    kind: dict[str, str]
    levels: dict[str, list | None]
    method: dict[str, str]
    n_missing: dict[str, int]
    predictors: dict[str, list[str]]
    visit_sequence: list[str]
    passive: dict[str, str]
    derived: frozenset[str]
    declared: dict[str, list[str]]  # the `predictors` option as given
    exclude: tuple[str, ...]
    passthrough: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        """The columns of the imputed data (derived passive columns are not written)."""
        return [n for n in self.kind if n not in self.derived] + [
            n for n in self.passthrough if n not in self.kind
        ]

    def imputed(self, name: str) -> bool:
        return self.method.get(name, "") not in ("", "passive")

    def passive_inputs(self, name: str) -> set[str]:
        """Columns a passive column is computed from, directly or through other passives."""
        if name not in self.passive:
            return set()
        direct = set(passive_kernel.inputs(self.passive[name]))
        return direct.union(*(self.passive_inputs(c) for c in direct if c != name))


def _stand_in_levels(variable: dict[str, Any]) -> list | None:
    """Levels to draw synthetic values from for a private column, whose config entry
    holds only their number: codes 0..K-1 for a numeric column, "level k of K" for text."""
    n = variable.get("n_levels")
    if not n:
        return None
    numeric = str(variable.get("type", "")).startswith(
        ("int", "uint", "double", "float", "decimal")
    )
    return list(range(n)) if numeric else [level_code(i, n) for i in range(n)]


def _run_from(source: Any) -> _Run:
    plan = getattr(source, "plan", source)  # a MiceResult holds its plan
    derived: set[str] | None = None
    if hasattr(plan, "to_dict") and hasattr(plan, "variables"):
        derived = {v.name for v in plan.variables if getattr(v, "derived", False)}
        plan = plan.to_dict()
    if not isinstance(plan, dict) or "variables" not in plan:
        raise TypeError(
            "check_congeniality takes a Plan, a MiceResult or the dict of a run's "
            f"_sparkmice/config.json; got {type(source).__name__}"
        )
    variables = plan["variables"]
    options = plan.get("config") or {}
    passive = dict(plan.get("passive") or options.get("passive") or {})
    if derived is None:  # a new name: it has no observed value at all
        derived = {
            v["name"]
            for v in variables
            if v["name"] in passive and v.get("n_missing") == plan.get("n_rows")
        }
    return _Run(
        kind={v["name"]: v["kind"] for v in variables},
        levels={v["name"]: v.get("levels") or _stand_in_levels(v) for v in variables},
        method={v["name"]: v.get("method") or "" for v in variables},
        n_missing={v["name"]: int(v.get("n_missing") or 0) for v in variables},
        predictors={k: list(p) for k, p in (plan.get("predictor_matrix") or {}).items()},
        visit_sequence=list(plan.get("visit_sequence") or []),
        passive=passive,
        derived=frozenset(derived),
        declared={k: list(p) for k, p in (options.get("predictors") or {}).items()},
        exclude=tuple(options.get("exclude") or ()),
        passthrough=tuple(plan.get("passthrough") or ()),
    )


@dataclass(frozen=True)
class _Factor:
    expr: str
    variables: frozenset[str]
    lookup: bool  # a bare column name or C(column)


@dataclass(frozen=True)
class _Term:
    name: str
    factors: tuple[_Factor, ...]

    @property
    def variables(self) -> frozenset[str]:
        return frozenset().union(*(f.variables for f in self.factors))


def _names_in(expr: str, columns: set[str]) -> frozenset[str]:
    """Columns an expression reads (formulaic misses some, e.g. inside `scale()`)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return frozenset(c for c in columns if re.search(rf"\b{re.escape(c)}\b", expr))
    return frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in columns)


def _factor(expr: str, columns: set[str]) -> _Factor:
    used = _names_in(expr, columns)
    bare = expr in columns or re.fullmatch(r"C\(\s*(\w+)\s*\)", expr) is not None
    return _Factor(expr, used, bare and len(used) == 1)


def _parse(formula: str, run: _Run) -> tuple[_Factor, list[_Term], list[str]]:
    """Outcome factor, right-hand terms (no intercept) and the formula's columns."""
    columns = run.columns
    derived = sorted(
        d
        for d in run.derived
        if re.search(rf"(?<![\w.]){re.escape(d)}(?![\w(])", formula.split("~", 1)[-1])
    )
    if derived:
        d = derived[0]
        raise ValueError(
            f"formula {formula!r} names {d!r}, a derived passive column ({run.passive[d]!r}) "
            f"that the imputed data do not hold; write its expression in the formula "
            f"instead, e.g. I({run.passive[d]})"
        )
    used = formula_variables(formula, columns)
    known = set(columns)
    parsed = Formula(formula)
    lhs_terms = [t for t in parsed.lhs if str(t) != "1"]
    if len(lhs_terms) != 1:
        raise ValueError(f"formula {formula!r} must have one outcome term; write 'y ~ x1 + x2'")
    lhs = lhs_terms[0]
    outcome = _factor(" * ".join(f"({f.expr})" for f in lhs.factors), known)
    if len(lhs.factors) == 1:
        outcome = _factor(lhs.factors[0].expr, known)
    terms = []
    for term in parsed.rhs:
        factors = tuple(_factor(f.expr, known) for f in term.factors if f.expr != "1")
        if factors:
            terms.append(_Term(str(term), factors))
    variables = sorted(set(used) | outcome.variables | set().union(*(t.variables for t in terms)))
    return outcome, terms, variables


class _Synthetic:
    """Random values of every variable: as the analysis sees them (levels) and as the
    imputation models see them (codes: binary 0/1, nominal level index)."""

    def __init__(self, run: _Run, seed: int = 20260517) -> None:
        self.run = run
        rng = np.random.default_rng(seed)
        width = 1 + sum(
            max(len(run.levels.get(n) or ()) - 1, 1) for n in run.kind if n not in run.derived
        )
        n = max(200, 4 * width)
        data: dict[str, Any] = {}
        codes: dict[str, np.ndarray] = {}
        for name in list(run.kind) + [p for p in run.passthrough if p not in run.kind]:
            if name in run.derived:
                continue
            kind, levels = run.kind.get(name, "continuous"), run.levels.get(name)
            if kind == "continuous" or not levels:
                codes[name] = data[name] = rng.uniform(0.5, 3.0, n)
                continue
            code = rng.integers(0, len(levels), n)
            code[: len(levels)] = np.arange(len(levels))  # every level occurs
            codes[name] = code.astype(float)
            data[name] = pd.Series(np.asarray(levels, dtype=object)[code]).infer_objects()
        for name, expr in run.passive.items():  # in declaration order, as the plan
            try:
                codes[name] = passive_kernel.evaluate(expr, codes)
            except (KeyError, passive_kernel.ExpressionError):
                codes[name] = np.full(n, np.nan)
            if name not in run.derived:
                data[name] = codes[name]
        self.n = n
        self.codes = codes
        self.data = pd.DataFrame(data)
        self._factors: dict[str, np.ndarray] = {}

    def factor(self, f: _Factor) -> np.ndarray:
        """The factor's columns as the analysis builds them (categorical: all levels)."""
        if f.expr not in self._factors:
            try:
                mm = model_matrix(f"0 + {f.expr}", self.data, na_action="ignore")
                values = np.asarray(mm, dtype=float)
            except Exception:  # a transform that random values do not suit
                values = np.full((self.n, 1), np.nan)
            self._factors[f.expr] = values
        return self._factors[f.expr]

    def product(self, factors: list[_Factor]) -> np.ndarray:
        out = np.ones((self.n, 1))
        for f in factors:
            v = self.factor(f)
            out = (out[:, :, None] * v[:, None, :]).reshape(self.n, -1)
        return out

    def columns_of(self, name: str) -> list[np.ndarray]:
        """A predictor's design columns, as `sparkmice.design.Design` builds them."""
        levels = self.run.levels.get(name) or ()
        if self.run.kind.get(name) in _CATEGORICAL:
            return [self.codes[name] == k for k in range(1, len(levels))]
        return [self.codes[name]] if name in self.codes else []

    def design(self, names: list[str]) -> np.ndarray:
        cols = [np.ones(self.n)] + [c for p in names for c in self.columns_of(p)]
        return np.column_stack(cols).astype(float)

    def in_span(self, need: np.ndarray, names: list[str]) -> bool:
        """Whether every column of `need` is a linear combination of the design of `names`."""
        base = self.design(names)
        rows = np.isfinite(need).all(axis=1) & np.isfinite(base).all(axis=1)
        if rows.sum() <= base.shape[1]:
            return False
        need, base = need[rows], base[rows]
        coef, *_ = np.linalg.lstsq(base, need, rcond=None)
        resid = np.linalg.norm(need - base @ coef, axis=0)
        return bool(np.all(resid <= _TOLERANCE * np.maximum(np.linalg.norm(need, axis=0), 1.0)))


def _passive_expr(f: _Factor, run: _Run) -> str | None:
    """The factor written in `passive` syntax (numbers and binary columns only), or None."""
    if any(run.kind.get(v) in _CATEGORICAL for v in f.variables):
        return None
    if f.lookup:
        return next(iter(f.variables))

    class _ToPassive(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            func = node.func
            if isinstance(func, ast.Name) and func.id == "I" and len(node.args) == 1:
                return node.args[0]
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in ("np", "numpy")
                and func.attr in _NP_FUNCTIONS
            ):
                node.func = ast.Name(_NP_FUNCTIONS[func.attr], ast.Load())
            return node

    try:
        tree = _ToPassive().visit(ast.parse(f.expr, mode="eval"))
        text = ast.unparse(tree)
        used = passive_kernel.inputs(text)
    except (SyntaxError, passive_kernel.ExpressionError):
        return None
    return text if set(used) <= set(run.kind) else None


def _all_written(exprs: list[str | None]) -> TypeGuard[list[str]]:
    """Whether every factor could be written in `passive` syntax (`_passive_expr`)."""
    return all(exprs)


def _product_expr(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    simple = re.compile(r"[\w.]+(\(.*\))?")
    return " * ".join(p if simple.fullmatch(p) else f"({p})" for p in parts)


def _column_name(expr: str) -> str:
    text = expr.replace("**", " pow ").replace("*", " x ").replace("/", " per ")
    return re.sub(r"_+", "_", re.sub(r"\W+", "_", text)).strip("_")


class _Fixes:
    """Collects the config changes the findings call for, and writes each one's text."""

    def __init__(self, run: _Run, synth: _Synthetic) -> None:
        self.run, self.synth = run, synth
        self.passive: dict[str, str] = {}
        self.predictors: dict[str, list[str]] = {}
        self.method: dict[str, str] = {}
        self.exclude_remove: list[str] = []

    def passive_column(self, expr: str) -> tuple[str, bool]:
        """Name of a passive column computing `expr`: an existing equivalent one (True) or a
        new one added to the changes (False)."""
        value = passive_kernel.evaluate(expr, self.synth.codes)[:, None]
        inputs = passive_kernel.inputs(expr)
        for name in list(self.run.passive) + list(self.passive):
            if name in self.synth.codes and self.synth.in_span(value, [*inputs, name]):
                return name, name in self.run.passive
        base = _column_name(expr) or "derived"
        name, k = base, 2
        taken = set(self.run.kind) | set(self.run.passthrough) | set(self.passive)
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        self.passive[name] = expr
        self.synth.codes[name] = value[:, 0]
        return name, False

    def add_predictor(self, target: str, name: str) -> str:
        """Text of the `predictors` change that puts `name` into target's model. A column
        missing from an undeclared target's model was left out by quickpred: the entry
        starts from the predictors quickpred chose."""
        chosen = name in self.run.kind and name not in self.run.derived
        if target in self.run.declared or target in self.predictors or chosen:
            start = self.run.declared.get(target, self.run.predictors.get(target, []))
            current = self.predictors.setdefault(target, list(start))
            if name not in current:
                current.append(name)
            return f"predictors: {{{target}: {current}}}"
        return f"(no `predictors` entry for {target}: it uses every column, {name} included)"

    def add_passive_predictor(self, target: str, expr: str) -> str:
        name, existing = self.passive_column(expr)
        declare = (
            f"passive column {name} ({self.run.passive[name]!r}) exists"
            if existing
            else f'passive: {{{name}: "{expr}"}}'
        )
        return f"{declare}; {self.add_predictor(target, name)}"

    def impute(self, name: str) -> str:
        method = DEFAULT_METHOD.get(self.run.kind.get(name, "continuous"), "pmm")
        self.method[name] = method
        return f"method: {{{name}: {method}}}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("passive", "predictors", "method", "exclude_remove"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def check_congeniality(plan: Any, formula: str) -> CongenialityReport:
    """Check the imputation models of a run against an analysis formula (Meng 1994).

    plan: a `sparkmice.plan.Plan`, a `MiceResult`, or the dict of `_sparkmice/config.json`.
    formula: the analysis model, e.g. "y ~ age * smoke + C(diet) + I(age**2) + np.log(crp)".
    Raises ValueError naming an unknown column or an unparsable formula.
    """
    run = _run_from(plan)
    outcome, terms, variables = _parse(formula, run)
    synth = _Synthetic(run)
    fixes = _Fixes(run, synth)
    rows: list[dict[str, str]] = []

    def report(variable: str, term: str, problem: str, fix: str) -> None:
        rows.append({"variable": variable, "term": term, "problem": problem, "fix": fix})

    y = ", ".join(sorted(outcome.variables)) or outcome.expr
    for v in variables:
        if run.n_missing.get(v) and not run.method.get(v) and v not in run.derived:
            report(
                v,
                v,
                f"{v} is incomplete and not imputed: the analysis drops its "
                f"{run.n_missing[v]} incomplete rows and no imputation model uses it",
                f"impute it: {fixes.impute(v)}",
            )

    wanted = set(variables).union(*(run.passive_inputs(v) for v in variables))
    targets = [j for j in run.visit_sequence if run.imputed(j) and j in wanted]
    for j in targets:
        method = run.method[j]
        if not METHODS[method].uses_predictors:
            report(
                j,
                j,
                f"method {method!r} uses no predictors: imputed {j} is unrelated to {y} and "
                f"the other variables, which biases their associations toward zero",
                fixes.impute(j),
            )
            continue
        preds = run.predictors.get(j, [])
        for v in dict.fromkeys([*sorted(outcome.variables), *variables]):
            if v == j or v in preds or j in run.passive_inputs(v):
                continue
            if v in outcome.variables and v != j:
                why = (
                    f"the outcome {v} is not a predictor of {j}: the values imputed for "
                    f"{j} carry no association with {v}, which biases its coefficient "
                    f"toward zero"
                )
            else:
                why = (
                    f"{v} is in the formula but not a predictor of {j}: the imputed values of "
                    f"{j} lose their association with {v} (biased toward zero)"
                )
            if v in run.exclude:
                fixes.exclude_remove.append(v)
                fix = f"remove {v} from `exclude`"
            elif run.n_missing.get(v) and not run.method.get(v):
                fix = f"impute {v} ({fixes.impute(v)}) so that it can predict {j}"
            else:
                fix = fixes.add_predictor(j, v)
            report(j, v, why, fix)

        for term in terms:
            _check_term(j, term, outcome, run, synth, fixes, report)

    findings = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    findings = findings.drop_duplicates(ignore_index=True)
    return CongenialityReport(formula, findings, fixes.as_dict(), tuple(targets))


def _check_term(
    j: str,
    term: _Term,
    outcome: _Factor,
    run: _Run,
    synth: _Synthetic,
    fixes: _Fixes,
    report: Any,
) -> None:
    """Findings for one right-hand term of the formula in the model of the imputed j."""
    preds = run.predictors.get(j, [])
    mine = [f for f in term.factors if j in f.variables]
    if not mine or j in outcome.variables:
        if len(term.factors) == 1 and _linear(term.factors[0], synth):
            return  # a main effect: checked by name
        if synth.in_span(synth.product(list(term.factors)), preds):
            return
        interaction = len(term.factors) > 1
        what = "interaction" if interaction else "nonlinear term"
        problem = (
            f"the {what} {term.name} is in the analysis but not in the imputation model of "
            f"{j}: the values imputed for {j} do not reflect it (biased toward "
            + ("no interaction)" if interaction else "a linear relation)")
        )
        exprs = [_passive_expr(f, run) for f in term.factors]
        if _all_written(exprs):
            fix = fixes.add_passive_predictor(j, _product_expr(exprs))
        else:
            fix = _categorical_fix(j, term, run, f"add {term.name} to the model of {j}")
        report(j, term.name, problem, fix)
        return

    if len(mine) == 1 and mine[0].variables == {j} and _linear(mine[0], synth):
        rest = [f for f in term.factors if f is not mine[0]]
        if not rest:
            return  # j's own main effect
        need = synth.product([outcome, *rest])
        if synth.in_span(need, preds):
            return
        partner = " * ".join(f.expr for f in rest)
        ys = f"{outcome.expr} * {partner}"
        problem = (
            f"the interaction {term.name} is in the analysis, but the model of {j} lacks "
            f"the product of the outcome with its partner ({ys}): {j} is imputed with "
            f"one slope on {outcome.expr} at every {partner} (the interaction is biased "
            f"toward zero; White, Royston & Wood 2011)"
        )
        exprs = [_passive_expr(f, run) for f in (outcome, *rest)]
        if exprs[0] is None and len(outcome.variables) == 1:
            v = next(iter(outcome.variables))
            exprs[0] = v if run.kind.get(v) == "binary" else None
        if _all_written(exprs):
            fix = fixes.add_passive_predictor(j, _product_expr(exprs))
            strata = _strata(rest, run)
            if strata:
                fix += f"; or impute {j} separately within each level of {strata}"
        else:
            fix = _categorical_fix(j, term, run, f"add {ys} to the model of {j}")
        report(j, term.name, problem, fix)
        return

    expr = _passive_expr(term.factors[0], run) if len(term.factors) == 1 else None
    if expr is None:
        exprs = [_passive_expr(f, run) for f in term.factors]
        expr = _product_expr(exprs) if _all_written(exprs) else None
    name = _column_name(expr) if expr else f"a column equal to {term.name}"
    problem = (
        f"the term {term.name} is nonlinear in the imputed {j}: no predictor of {j} can "
        f"carry it, and imputing {j} linearly distorts it"
    )
    fix = (
        f"impute it as just another variable: add a column {name}"
        + (f" = {expr}" if expr else "")
        + f" to the input and write {name} in the formula instead of {term.name} (von Hippel "
        f"2009); or derive it passively"
        + (f' (passive: {{{name}: "{expr}"}})' if expr else "")
        + f" from {j} imputed by pmm (White, Royston & Wood 2011); both approximate"
    )
    if run.method.get(j) not in ("pmm",) and run.kind.get(j) == "continuous":
        fix += f"; method: {{{j}: pmm}}"
    report(j, term.name, problem, fix)


def _linear(f: _Factor, synth: _Synthetic) -> bool:
    """A factor of one variable that is affine in it (or its dummies): a main effect."""
    if len(f.variables) != 1:
        return False
    return f.lookup or synth.in_span(synth.factor(f), [next(iter(f.variables))])


def _strata(rest: list[_Factor], run: _Run) -> str | None:
    """The partner, when it is one complete categorical or binary column (stratify on it)."""
    if len(rest) != 1 or len(rest[0].variables) != 1 or not rest[0].lookup:
        return None
    z = next(iter(rest[0].variables))
    complete = not run.n_missing.get(z)
    return z if complete and run.kind.get(z) in ("binary", *_CATEGORICAL) else None


def _categorical_fix(j: str, term: _Term, run: _Run, goal: str) -> str:
    """The fix when the needed column reads a nominal variable (passive cannot)."""
    cats = sorted(v for v in term.variables if run.kind.get(v) in _CATEGORICAL and v != j)
    if not cats:
        return f"{goal}: write the term as a passive formula (+ - * / ** log exp sqrt abs)"
    z = cats[0]
    how = (
        f"impute {j} separately within each level of {z} (split the input by {z}, run "
        f"mice on each part and stack the imputations)"
        if not run.n_missing.get(z)
        else f"({z} is incomplete, so stratifying on it is not possible)"
    )
    return (
        f"{goal}: passive formulas cannot read the nominal {z}; add 0/1 columns for its "
        f"levels to the input and declare passive products with them; or {how}"
    )


def read_run_config(directory: str) -> dict[str, Any]:
    """The run's `DIR/_sparkmice/config.json` (local path or filesystem URI)."""
    from sparkmice.io.run import RunFolder

    run = RunFolder(directory)
    config = run.read_config()
    if config is None:
        raise FileNotFoundError(
            f"{run.meta('config.json').uri} not found: {directory} is not the output "
            "directory of a sparkmice run (pass the directory given to 'sparkmice impute "
            "--output')"
        )
    return config


def check_congeniality_dir(directory: str, formula: str) -> CongenialityReport:
    """`check_congeniality` on the plan of the imputed run in `directory`."""
    return check_congeniality(read_run_config(directory), formula)


def warn_congeniality(
    directory: str, formula: str, file: TextIO | None = None
) -> CongenialityReport | None:
    """Print the findings as a warning (for `sparkmice pool`) when `directory` holds a run's
    config; None when it does not or the formula is bad (pooling reports that itself)."""
    try:
        report = check_congeniality_dir(directory, formula)
    except (OSError, ValueError):
        return None
    out = file if file is not None else sys.stderr
    if report.ok:
        print(f"congeniality: ok ({', '.join(report.checked) or 'no imputed variable'})", file=out)
    else:
        print(f"warning: imputation models not congenial with the analysis:\n{report}", file=out)
    return report
