"""The package's layers (docs/architecture.md): every import points to the same or a lower
layer, and no two modules import each other. Read from the syntax tree of every module,
imports inside functions included, so a lazy import cannot hide an upward dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sparkmice"

# lowest first; a module belongs to the first layer with a prefix that names it or its package
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("names", "lazy", "expression", "privacy", "datasets", "session", "io.paths",
                    "ordinal")),
    ("kernels", ("kernels", "pooling.rubin", "pooling.tests", "pooling.r_squared",
                 "pooling.results",
                 "diagnostics.rhat", "diagnostics.missingness", "diagnostics.plots")),
    ("storage", ("io",)),
    ("options", ("config",)),
    # io.spark reads the input into Spark and checks it as the plan does (InputError, keys)
    ("plan", ("plan", "design", "blocks", "summaries", "state", "where", "identity",
              "analysis.formula", "io.spark", "predictors", "models")),
    ("sampler", ("sampler", "progress")),
    ("engines", ("engines", "newdata")),
    ("analysis", ("analysis", "diagnostics", "congeniality", "pooling")),
    ("api", ("api", "")),  # "": the package's own __init__ (lazy public names)
    ("entry points", ("cli", "__main__", "impute_job", "impute_new_job", "congeniality_job",
                      "complete_job",
                      "pooling.job", "diagnostics.job")),
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The layer index of `module` (a name relative to the package); the most specific
    prefix wins, so `pooling.job` is an entry point although `pooling` is analysis."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            match = module == prefix or (prefix and module.startswith(prefix + "."))
            if match and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"module sparkmice.{module} is in no layer: add it to LAYERS")
    return best


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_in(source: str) -> set[str]:
    """The sparkmice modules a module's source imports, as relative names: `from
    sparkmice.x import y` imports x.y if that is a module, else x."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}"
                if f"{node.module}.{a.name}".removeprefix("sparkmice.") in MODULES
                else node.module
                for a in node.names
            ]
        else:
            continue
        for name in names:
            if name == "sparkmice" or name.startswith("sparkmice."):
                found.add(name.removeprefix("sparkmice").removeprefix("."))
    return found


def imports_of(module: str) -> set[str]:
    return imports_in(MODULES[module].read_text()) - {module}


def upward_imports(module: str, imported: set[str]) -> list[str]:
    """The imports of `module` that point to a higher layer (a package's __init__ may
    import its own submodules)."""
    own = layer_of(module)
    return sorted(
        f"{dep} ({LAYERS[layer_of(dep)][0]})"
        for dep in imported
        if layer_of(dep) > own and not (module == "" or dep.startswith(module + "."))
    )


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    upward = upward_imports(module, imports_of(module))
    layer = LAYERS[layer_of(module)][0]
    assert not upward, f"sparkmice.{module} ({layer}) imports upward: {upward}"


def test_no_two_modules_import_each_other():
    pairs = sorted(
        (a, b) for a in MODULES for b in imports_of(a)
        if a < b and a in imports_of(b) and not (a == "" or b.startswith(a + "."))
    )  # fmt: skip
    assert not pairs, f"modules importing each other: {pairs}"


def test_the_check_sees_a_lazy_upward_import():
    """An import inside a function counts (what a cycle usually hides in)."""
    source = "import numpy\n\ndef f():\n    from sparkmice.api import mice\n"
    assert imports_in(source) == {"api"}
    assert upward_imports("kernels.norm", imports_in(source)) == ["api (api)"]
    assert imports_in("from sparkmice import privacy, lazy") == {"privacy", "lazy"}
