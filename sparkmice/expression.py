"""The one check of user-written arithmetic: a syntax tree walked against a small grammar.

Passive formulas (`sparkmice.kernels.passive`) and the analysis formula's `I(...)` and
function terms (`sparkmice.analysis.formula`) are Python expressions that something later
evaluates (our own evaluator, or formulaic's `eval`). Both are parsed with `ast` and
accepted only when every node is arithmetic on names and numbers, with calls to a fixed
set of functions: no attribute access (beyond dotted names that are column names, where
allowed), no subscripts, strings, lambdas or other calls, so nothing can be run through
them.
"""

from __future__ import annotations

import ast
from collections.abc import Collection

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
