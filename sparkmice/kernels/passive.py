"""passive: a column derived from others by a formula, recomputed after each imputation of
its inputs and never imputed itself (R mice's `~I(...)` passive method).

The formula is an arithmetic expression of other columns' current values (binary columns
as their 0/1 codes; nominal columns are not allowed): + - * / **, parentheses, numbers and
log, exp, sqrt, abs. It is parsed once into a restricted syntax tree — no names but
columns and those functions, no attribute access, nothing else is evaluated.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import cast

import numpy as np

from sparkmice.expression import first_unsafe

FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}
_BINARY = {  # the operators of sparkmice.expression.ARITHMETIC
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}


class ExpressionError(ValueError):
    """A passive formula outside the allowed arithmetic."""


def parse(expression: str) -> ast.expr:
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as e:
        raise ExpressionError(f"cannot parse {expression!r}: {e.msg}") from None
    _check(tree, expression)
    return tree


def _check(node: ast.AST, expression: str) -> None:
    found = first_unsafe(node, FUNCTIONS)
    if found is None:
        return
    piece, reason = found
    raise ExpressionError(
        f"{expression!r} {reason} ({ast.unparse(piece)}); passive formulas allow "
        f"+ - * / **, numbers, columns and {sorted(FUNCTIONS)}"
    )


def inputs(expression: str) -> list[str]:
    """The column names a formula reads, in order of first use."""
    names: list[str] = []
    for node in ast.walk(parse(expression)):
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS and node.id not in names:
            names.append(node.id)
    return names


def evaluate(expression: str, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The formula's value for every row, from the named columns' arrays."""

    def ev(node: ast.expr):
        # parse() admitted only numbers, columns, arithmetic and FUNCTIONS(one argument),
        # so a constant is a number and anything else is a call of an undotted name.
        if isinstance(node, ast.Constant):
            return float(cast(float, node.value))
        if isinstance(node, ast.Name):
            return columns[node.id]
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        call = cast(ast.Call, node)
        return FUNCTIONS[cast(ast.Name, call.func).id](ev(call.args[0]))

    with np.errstate(all="ignore"):
        return np.asarray(ev(parse(expression)), dtype=float)
