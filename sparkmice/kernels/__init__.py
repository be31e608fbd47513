"""Statistical kernels: pure numpy, no Spark. One module per imputation method.

`METHODS` is the registry the sampler uses: one line per method, each the `Method` its
module declares (see `contract`). A new method is a new module and a line here.
"""

from __future__ import annotations

from sparkmice.kernels import cart, logreg, mean, norm, pmm, polr, polyreg, rf, sample
from sparkmice.kernels.contract import Method

METHODS: dict[str, Method] = {
    "pmm": pmm.METHOD,
    "norm": norm.METHOD,
    "logreg": logreg.METHOD,
    "polyreg": polyreg.METHOD,
    "polr": polr.METHOD,
    "sample": sample.METHOD,
    "mean": mean.METHOD,
    "cart": cart.METHOD,
    "rf": rf.METHOD,
}

DEFAULT_METHOD = {"continuous": "pmm", "binary": "logreg", "nominal": "polyreg", "ordered": "polr"}
