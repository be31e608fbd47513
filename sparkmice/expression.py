"""The one check of user-written arithmetic: a syntax tree walked against a small grammar.

Passive formulas (`sparkmice.kernels.passive`) and the analysis formula's `I(...)` and
function terms (`sparkmice.analysis.formula`) are Python expressions that something later
evaluates (our own evaluator, or formulaic's `eval`). Both are parsed with `ast` and
accepted only when every node is arithmetic on names and numbers, with calls to a fixed
set of functions: no attribute access (beyond dotted names that are column names, where
allowed), no subscripts, strings, lambdas or other calls, so nothing can be run through
them. Row predicates (config `ignore`: "split == 'test'") are parsed the same way into
comparisons, and/or/not, column names and literals, and evaluated by pyarrow.compute.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def dotted_name(node: ast.AST) -> str | None:
    """`a`, `a.b`, `a.b.c` as text when `node` is a plain name or chain of attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        root = dotted_name(node.value)
        return None if root is None else f"{root}.{node.attr}"
    return None


def is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))


def first_unsafe(
    node: ast.AST,
    functions: Collection[str],
    *,
    comparisons: bool = False,
    dotted: bool = False,
) -> tuple[ast.AST, str] | None:
    """The first node (pre-order) outside the grammar and why, or None when all is allowed.

    Grammar: numbers; names; + - * / ** and unary + -; calls `f(one argument)` with f in
    `functions` (dotted names such as "np.log" allowed there). `comparisons`: also
    == != < <= > >=, whose operands may be strings (as in `I(sex == 'female')`).
    `dotted`: a chain `a.b` (no call) counts as one name (column names with dots).
    """
    if isinstance(node, ast.Name):
        return None
    if is_number(node):
        return None
    if isinstance(node, ast.Constant):
        return node, "has a constant that is not a number"
    if isinstance(node, (ast.UnaryOp, ast.BinOp, ast.BoolOp)) and not isinstance(
        node.op, (ast.UAdd, ast.USub, *ARITHMETIC)
    ):
        return node, f"uses {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return first_unsafe(node.operand, functions, comparisons=comparisons, dotted=dotted)
    if isinstance(node, ast.BinOp):
        for side in (node.left, node.right):
            found = first_unsafe(side, functions, comparisons=comparisons, dotted=dotted)
            if found:
                return found
        return None
    if isinstance(node, ast.Call):
        name = dotted_name(node.func)
        if name not in functions or len(node.args) != 1 or node.keywords:
            return node, f"calls something other than {sorted(functions)} of one argument"
        return first_unsafe(node.args[0], functions, comparisons=comparisons, dotted=dotted)
    if comparisons and isinstance(node, ast.Compare):
        if not all(isinstance(op, COMPARISONS) for op in node.ops):
            return node, "uses a comparison other than == != < <= > >="
        for side in (node.left, *node.comparators):
            if isinstance(side, ast.Constant) and isinstance(side.value, str):
                continue
            found = first_unsafe(side, functions, comparisons=comparisons, dotted=dotted)
            if found:
                return found
        return None
    if dotted and dotted_name(node) is not None:
        return None
    return node, f"uses {type(node).__name__}"


# -- row predicates (config `ignore`) ---------------------------------------------------------
_BACKTICKED = re.compile(r"`([^`]+)`")
_OPERATOR = re.compile(r"[=<>!()'\"`]|\b(and|or|not)\b")
_PLACEHOLDER = "sparkmice_backticked_{}_"
_COMPARE = {
    ast.Eq: pc.equal, ast.NotEq: pc.not_equal, ast.Lt: pc.less,
    ast.LtE: pc.less_equal, ast.Gt: pc.greater, ast.GtE: pc.greater_equal,
}  # fmt: skip
PREDICATE_GRAMMAR = (
    "comparisons (== != < <= > >=) of columns and literals (numbers, 'strings', True, "
    "False), joined by and, or, not and parentheses; a name with spaces or a keyword in "
    "backticks, e.g. \"split == 'test'\" or \"`visit date` >= '2026-01-01' and not `x.y`\""
)


class PredicateError(ValueError):
    """A row predicate outside the grammar, or one that does not fit the table's columns."""


@dataclass(frozen=True)
class RowPredicate:
    """A row filter the user wrote, parsed into a syntax tree of comparisons, and, or, not,
    column names and literals only; evaluated by pyarrow.compute, never by Python.
    `columns`: the columns it reads; `is_column`: the text is one (boolean) column."""

    text: str
    tree: ast.expr
    names: dict[str, str]  # placeholder -> the backticked column name
    columns: tuple[str, ...]

    @property
    def is_column(self) -> bool:
        return self._column(self.tree) is not None

    def mask(self, table: pa.Table) -> np.ndarray:
        """True where the row satisfies the predicate; a missing value counts as false.
        PredicateError when a literal or column does not fit the columns' types."""
        try:
            result = self._evaluate(self.tree, table)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
            first = str(err).splitlines()[0]
            raise PredicateError(
                f"{self.text!r} does not fit the columns' types: {first}"
            ) from None
        if not pa.types.is_boolean(result.type):
            raise PredicateError(
                f"{self.text!r} gives {result.type} values, not true/false: compare the "
                "column (e.g. `x == 1`), or name a boolean column"
            )
        return pc.fill_null(result, False).to_numpy(zero_copy_only=False)

    def _column(self, node: ast.AST) -> str | None:
        name = dotted_name(node)
        return None if name is None else self.names.get(name, name)

    def _evaluate(self, node: ast.AST, table: pa.Table) -> Any:
        if isinstance(node, ast.BoolOp):
            combine = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
            values = [self._evaluate(v, table) for v in node.values]
            return functools.reduce(combine, values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return pc.invert(self._evaluate(node.operand, table))
        if isinstance(node, ast.Compare):
            sides = [self._operand(s, table) for s in (node.left, *node.comparators)]
            parts = [
                _COMPARE[type(op)](*_aligned(a, b))
                for op, a, b in zip(node.ops, sides[:-1], sides[1:], strict=True)
            ]
            return functools.reduce(pc.and_kleene, parts)
        return self._operand(node, table)

    def _operand(self, node: ast.AST, table: pa.Table) -> Any:
        column = self._column(node)
        if column is not None:
            values = table.column(column)
            if pa.types.is_dictionary(values.type):
                return values.cast(values.type.value_type)
            return values
        return pa.scalar(_literal(node))


def _literal(node: ast.AST) -> Any:
    """The value of a literal the grammar allows (a number, possibly negative, a string,
    True, False)."""
    if isinstance(node, ast.UnaryOp):
        return -_literal(node.operand)
    return cast(ast.Constant, node).value


def _aligned(a: Any, b: Any) -> tuple[Any, Any]:
    """A literal cast to the type of the column it is compared with ('2026-01-01' to a date)."""
    if isinstance(a, pa.Scalar) and not isinstance(b, pa.Scalar):
        return a.cast(b.type), b
    if isinstance(b, pa.Scalar) and not isinstance(a, pa.Scalar):
        return a, b.cast(a.type)
    return a, b


@functools.lru_cache(maxsize=64)
def row_predicate(text: str) -> RowPredicate:
    """Parse `text` into a RowPredicate; PredicateError naming the first piece outside the
    grammar (`PREDICATE_GRAMMAR`). Backticks quote any column name: `` `a b` ``, `` `x.y` ``.
    A text with no operator, quote or parenthesis that is not an expression either is one
    column's name, spaces and underscores and all (as `ignore` was before it took
    predicates, so old configs keep working)."""
    if text.strip() and not _OPERATOR.search(text):
        try:
            bare = isinstance(ast.parse(text.strip(), mode="eval").body, ast.Name)
        except SyntaxError:
            bare = True
        if bare:
            return row_predicate(f"`{text}`")
    names: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        name = _PLACEHOLDER.format(len(names))
        names[name] = match.group(1)
        return name

    source = _BACKTICKED.sub(placeholder, text)
    try:
        tree = ast.parse(source.strip(), mode="eval").body if "`" not in source else None
    except SyntaxError:
        tree = None
    if tree is None:
        raise PredicateError(f"{text!r} does not parse; write {PREDICATE_GRAMMAR}")
    columns: list[str] = []

    def refuse(node: ast.AST) -> PredicateError:
        piece = ast.unparse(node)
        for name, original in names.items():
            piece = piece.replace(name, f"`{original}`")
        return PredicateError(f"{text!r}: {piece} is not allowed; write {PREDICATE_GRAMMAR}")

    def column(node: ast.AST) -> bool:
        name = dotted_name(node)
        if name is None:
            return False
        if "__" in name and name not in names:  # as in formulas: such a name in backticks
            raise refuse(node)
        columns.append(names.get(name, name))
        return True

    def literal(node: ast.AST) -> bool:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return is_number(node.operand)
        return isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool))

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                walk(value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            walk(node.operand)
        elif isinstance(node, ast.Compare):
            if not all(isinstance(op, COMPARISONS) for op in node.ops):
                raise refuse(node)
            for side in (node.left, *node.comparators):
                if not (column(side) or literal(side)):
                    raise refuse(side)
        elif not column(node):
            raise refuse(node)

    walk(tree)
    return RowPredicate(text, tree, names, tuple(dict.fromkeys(columns)))
