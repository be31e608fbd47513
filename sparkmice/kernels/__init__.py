"""Statistical kernels: pure numpy, no Spark. One module per imputation method.

`METHODS` is the registry the sampler uses; each module follows `contract`.
"""

from __future__ import annotations

from types import ModuleType

from sparkmice.kernels import logreg, mean, norm, pmm, polr, polyreg, sample

METHODS: dict[str, ModuleType] = {
    "pmm": pmm,
    "norm": norm,
    "logreg": logreg,
    "polyreg": polyreg,
    "polr": polr,
    "sample": sample,
    "mean": mean,
}

DEFAULT_METHOD = {"continuous": "pmm", "binary": "logreg", "nominal": "polyreg", "ordered": "polr"}
