"""The analysis formula is checked here, on its syntax tree, before formulaic sees it.

formulaic evaluates the Python inside a formula (`I(...)`, function calls) with `eval`, so
a formula from someone else's config file could run code:
`I(np.__builtins__["__import__"]("os").system(...) + x)`. `check_formula` accepts only:

- column names, also with dots (`Solar.R`) or quoted in backticks (`` `Solar R` ``);
- numbers and the formula operators + - * / ** : with parentheses (`- 1`, `0 +`);
- `C(column)`;
- `I(arithmetic)`: + - * / ** of columns and numbers, comparisons == != < <= > >= (their
  operands may be strings: `I(sex == 'female')`), np.log/np.exp/np.sqrt/np.abs;
- np.log, np.exp, np.sqrt, np.abs (and bare log, exp, abs, which formulaic resolves) of
  such arithmetic; formulaic's `center(x)` and `scale(x, center=..., scale=..., ddof=...)`.

Everything else — other attributes, subscripts, strings outside a comparison, lambdas,
calls to anything else, names with `__` — is refused with one line that names the piece.
The walker of the arithmetic is `sparkmice.expression`, shared with passive formulas.
"""

from __future__ import annotations

import ast
import re

from sparkmice.config import ConfigError
from sparkmice.expression import dotted_name, first_unsafe, is_number

NP_FUNCTIONS = ("np.log", "np.exp", "np.sqrt", "np.abs")
BARE_FUNCTIONS = ("log", "exp", "abs")  # names formulaic resolves itself (not sqrt)
ARITHMETIC_FUNCTIONS = frozenset(NP_FUNCTIONS + BARE_FUNCTIONS)
TRANSFORMS = {"center": {}, "scale": {"center": bool, "scale": bool, "ddof": int}}
_FORMULA_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult)  # @ is :
_ALLOWED = (
    "column names, numbers, + - * / ** : and parentheses, C(column), I(arithmetic), "
    f"{', '.join(NP_FUNCTIONS)}, {', '.join(TRANSFORMS)}"
)
_QUOTED = re.compile(r"`([^`]*)`")
_PLACEHOLDER = "sparkmice_quoted_{}_"


class FormulaError(ConfigError):
    """An analysis formula outside the safe subset, or one that does not parse."""


def check_formula(formula: str) -> str:
    """Return `formula` unchanged when it is in the safe subset; otherwise raise
    FormulaError naming the offending piece and the allowed subset."""
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string such as 'y ~ x1 + C(x2)'; got {formula!r}")
    text, quoted = _placeholders(formula)
    for name in quoted.values():
        if "__" in name:
            raise FormulaError(
                f"formula {formula!r}: `{name}` is a name with '__'; analysis formulas "
                f"allow only {_ALLOWED}"
            )
    sides = text.split("~")
    if len(sides) > 2 or "`" in text:
        what = "more than one ~" if len(sides) > 2 else "an unclosed backtick"
        raise FormulaError(f"formula {formula!r} has {what}; write it as 'y ~ x1 + C(x2)'")

    def show(node: ast.AST) -> str:
        piece = ast.unparse(node).replace(" @ ", ":")
        for placeholder, name in quoted.items():
            piece = piece.replace(placeholder, f"`{name}`")
        return piece

    def refuse(node: ast.AST, why: str) -> FormulaError:
        return FormulaError(
            f"formula {formula!r}: {show(node)} {why}; analysis formulas allow only {_ALLOWED}"
        )

    for side in sides:
        if not side.strip():
            continue
        try:
            tree = ast.parse(side.replace(":", "@").strip(), mode="eval").body
        except SyntaxError:
            if re.search(r"\blambda\b", side):
                raise FormulaError(
                    f"formula {formula!r}: lambda is not allowed; analysis formulas allow only "
                    f"{_ALLOWED}"
                ) from None
            raise FormulaError(
                f"cannot parse formula {formula!r}; write it as 'y ~ x1 + C(x2) + x1:x3' "
                f"(allowed: {_ALLOWED})"
            ) from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and "__" in node.id:
                raise refuse(node, "is a name with '__'")
            if isinstance(node, ast.Attribute) and "__" in node.attr:
                raise refuse(node, "reads an attribute with '__'")
        _check_term(tree, refuse)
    return formula


def _placeholders(text: str) -> tuple[str, dict[str, str]]:
    """`text` with each backtick-quoted name replaced by a Python name (so that it parses),
    and the names those placeholders stand for."""
    quoted: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        name = _PLACEHOLDER.format(len(quoted))
        quoted[name] = match.group(1)
        return name

    return _QUOTED.sub(placeholder, text), quoted


def _check_term(node: ast.AST, refuse) -> None:
    """Formula level: names, numbers, the formula operators and the allowed calls."""
    if is_number(node) or _is_column(node):
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        _check_term(node.operand, refuse)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, _FORMULA_OPERATORS):
        _check_term(node.left, refuse)
        _check_term(node.right, refuse)
        return
    if not isinstance(node, ast.Call):
        raise refuse(node, f"is not allowed ({type(node).__name__})")
    name = dotted_name(node.func)
    if name == "C":
        if len(node.args) != 1 or node.keywords or not _is_column(node.args[0]):
            raise refuse(node, "is not C(column)")
        return
    if name in TRANSFORMS:
        options = TRANSFORMS[name]
        for keyword in node.keywords:
            kind = options.get(keyword.arg) if keyword.arg is not None else None  # None: **x
            value = keyword.value
            if kind is None or not (isinstance(value, ast.Constant) and type(value.value) is kind):
                raise refuse(node, f"takes only {sorted(options) or 'no'} options, as constants")
    elif name not in {"I", *ARITHMETIC_FUNCTIONS} or node.keywords:
        raise refuse(node, "calls a function outside the allowed ones")
    if len(node.args) != 1:
        raise refuse(node, "must have one argument")
    found = first_unsafe(node.args[0], ARITHMETIC_FUNCTIONS, comparisons=True, dotted=True)
    if found is not None:
        piece, why = found
        raise refuse(piece, why)


def _is_column(node: ast.AST) -> bool:
    """A name or dotted name (a column such as `Solar.R`), not one rooted at numpy."""
    name = dotted_name(node)
    return name is not None and name.split(".")[0] not in ("np", "numpy")


def formula_columns(formula: str) -> tuple[list[str], list[str]]:
    """The data columns that each side of a checked formula names (outcome side, predictor
    side; each in order of appearance): names and dotted names (`Solar.R`), backtick-quoted
    names unquoted, the arguments of the allowed calls; not the functions called, numpy's
    names or strings. formulaic's own `required_variables` reads `Solar.R` as the column
    `Solar` and leaves out a column it takes for one of its functions (a column `log`,
    `x` in `center(x)`), so the columns come from the formula's syntax tree."""
    check_formula(formula)
    sides = formula.split("~") if formula.count("~") == 1 else ["", formula]
    lhs, rhs = (expression_columns(side) for side in sides)
    return lhs, rhs


def expression_columns(expression: str) -> list[str]:
    """The columns one side of a checked formula (or one of its terms) names."""
    text, quoted = _placeholders(expression)
    text = text.replace(":", "@").strip()
    if not text:
        return []
    found: list[str] = []

    def collect(node: ast.AST) -> None:
        if _is_column(node):
            name = dotted_name(node) or ""
            found.append(quoted.get(name, name))
            return
        children = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
        for child in children:
            collect(child)

    collect(ast.parse(text, mode="eval").body)
    return list(dict.fromkeys(found))
