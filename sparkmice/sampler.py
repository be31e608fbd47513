"""The chained-equations sampler: one chain, written once for every engine.

The sampler owns the shared work of a variable step (design, collinearity checks, logged
events, random streams, trace); the methods in `kernels` only fit, draw and impute. It
talks to the data only through a `BlockSet`: `reduce` (a function of each block, merged in
block order) and `update` (change each block in place). The in-process engine loops over
blocks; the barrier engine runs this same code in every Spark task and merges over TCP; the
per-step engine runs it on the driver and turns each reduce into a Spark job.

The sampler knows the methods only through their `Method` contract (`kernels.contract`):
which options each takes, whether it uses predictors, augments, or warm-starts.

A variable's `post` (R mice's: round, then squeeze; `post_process`) acts on its imputed
cells right after each of its imputations, so the trace and the models fitted after it
see the processed values. Before its first sweep a chain records the blocks' missing cells
(`sparkmice.where`, once per run), so the run can give back R's `where` and its input.

Random streams: numpy SeedSequence(seed, spawn_key=(chain, iteration, variable, stream,
block)); stream 0 draws a step's parameters (the same in every task), stream 1 imputes a
block, stream 2 samples a block's observed-value pool, stream 3 (with a purpose) is a
block's own randomness in a step's fit (`BlockContext.rng`: rf's bootstrap weights); with
`model_uri` (the chain's final models kept for new rows, `sparkmice.models`), stream 4
samples the donor rows of the last sweep's steps and stream 5 the variable's pool those keep.

A binned method (the trees) gets each predictor as bin codes: the cut points of every
numeric predictor come once per chain, after the initial fill (or the restored sweep),
from quantile points of its observed cells in every block merged in block order, so they
depend on the data alone (a derived passive predictor: the rows whose inputs are observed).

No numerical failure ends a run. A step's parameters come from the first of
  1. the method as asked, on the predictors the collinearity checks kept (its linear
     algebra already has R mice's ridge: `least_squares` adds 1e-5·diag to a singular
     X'X; Newton's solve falls back to least squares, `symmetric_cholesky` to a jitter);
  2. the method on the intercept alone (fewer predictors: none);
  3. `sample`: random observed values, which needs no fit;
that raises no linear-algebra or floating-point error and gives finite parameters. A method
that uses predictors goes straight to 3 with fewer than 2 observed values. Every fallback is
a logged event naming the chain, iteration, variable and the fallback (no data values).
The failures happen alike in every task (same sums, same random stream), so all tasks of a
barrier chain take the same fallback.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from sparkmice import state, where
from sparkmice.blocks import Block
from sparkmice.config import MiceConfig
from sparkmice.design import Design
from sparkmice.io.paths import filesystem_path, write_atomic
from sparkmice.kernels import METHODS, passive
from sparkmice.kernels.contract import BlockContext, BlockView, Method, ObservedPool, StepData
from sparkmice.kernels.histtree import QuantilePoints
from sparkmice.kernels.linalg import Moments, collinear_predictors
from sparkmice.models import DONOR_ROWS, Donors, StepModel, bounded_pool, chain_bytes
from sparkmice.plan import Plan

T = TypeVar("T")
POOL_SIZE = 1000  # observed values kept per block for the initial fill and `sample`
PARAMETERS, IMPUTE, POOL, FIT, DONORS, KEPT_POOL = 0, 1, 2, 3, 4, 5
MIN_OBSERVED = 2  # fewest observed values a method with predictors is fitted on
NUMERICAL_FAILURES = (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError)


class BlockSet(Protocol):
    def reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T: ...

    def update(self, fn: Callable[[Block], None]) -> None: ...


def rng_for(seed: int, chain: int, iteration: int, var: int, stream: int, block: int = 0):
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(chain, iteration, var, stream, block))
    )


def add(a: Any, b: Any) -> Any:
    return a + b


@dataclass(frozen=True)
class ChainTask:
    """What an engine runs: chain `chain`'s sweeps in `iterations`, saving its state to
    `state_uri`, and resuming from `resume_from` (a sweep's report) if they do not start
    at 1; the imputed cells are recorded in `where_uri` (`sparkmice.where`) if given. With
    `model_uri`, the last sweep's models are written there (`sparkmice.models`) by the task
    that reports (every task takes part in sampling the donors)."""

    chain: int
    iterations: range
    state_uri: str | None = None
    resume_from: dict[str, Any] | None = None
    where_uri: str | None = None
    model_uri: str | None = None

    def run(
        self, plan: Plan, blocks: BlockSet, on_sweep: Callable[[SweepReport], None] | None
    ) -> None:
        chain = Chain(plan, self.chain)
        if self.where_uri is not None:
            chain.record_where(blocks, self.where_uri)
        chain.run(blocks, self.iterations, on_sweep, self.state_uri, self.resume_from,
                  keep_models=self.model_uri is not None)  # fmt: skip
        if self.model_uri is not None and on_sweep is not None and chain.models:
            fs, path = filesystem_path(self.model_uri)
            write_atomic(fs, path, chain_bytes(chain.models))


@dataclass
class SweepReport:
    """One finished sweep: timing, trace rows, logged events, and the warm starts a resume
    needs (written as the sweep's progress file, which also marks the sweep complete)."""

    chain: int
    iteration: int
    seconds: float
    trace: list[dict[str, Any]]
    events: list[dict[str, Any]]
    exchanges: int
    warm_start: dict[str, list] = field(default_factory=dict)  # variable index -> estimate


@dataclass
class Chain:
    """One imputation chain: its plan, number, and the state carried between sweeps."""

    plan: Plan
    chain: int
    warm_start: dict[int, np.ndarray] = field(default_factory=dict)
    pools: dict[int, ObservedPool] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    exchanges: int = 0
    models: dict[int, StepModel] = field(default_factory=dict)  # the last sweep's, if kept

    def __post_init__(self) -> None:
        plan = self.plan
        self.designs = {
            plan.index[n]: Design.for_target(plan, n, METHODS[plan.method[n]].binned)
            for n in plan.visit_sequence
        }
        index = plan.index
        self.passive = [
            (index[name], formula, {c: index[c] for c in passive.inputs(formula)})
            for name, formula in plan.passive.items()
        ]

    # -- the parts of a run -------------------------------------------------------------
    def run(
        self,
        blocks: BlockSet,
        iterations: range,
        on_sweep: Callable[[SweepReport], None] | None = None,
        state_uri: str | None = None,
        resume_from: dict[str, Any] | None = None,
        keep_models: bool = False,
    ) -> None:
        """The sweeps in `iterations`: from the initial fill when they start at 1, else from
        the saved state of sweep `iterations.start - 1` (its progress report given as
        `resume_from`). With `state_uri`, each sweep's imputed cells are saved there; with
        `keep_models`, the last sweep's step models are kept in `self.models`."""
        self.pools_of(blocks)
        if iterations.start == 1:
            self.fill(blocks)
        else:
            self.restore(blocks, iterations.start - 1, state_uri, resume_from)
        self.bin_edges(blocks)
        js = list(self.designs)
        for it in iterations:
            t0 = time.perf_counter()
            n_events, n_exchanges = len(self.events), self.exchanges
            for j in self.designs:
                self.step(blocks, j, it, keep_models and it == iterations.stop - 1)
            rows = self.record_trace(blocks, it)
            if state_uri is not None:
                self.reduce(
                    blocks,
                    functools.partial(
                        state.save_block, uri=state_uri, chain=self.chain, iteration=it, js=js
                    ),
                )
            if on_sweep is not None:
                on_sweep(
                    SweepReport(
                        self.chain,
                        it,
                        time.perf_counter() - t0,
                        rows,
                        self.events[n_events:],
                        self.exchanges - n_exchanges,
                        {str(j): np.asarray(w).tolist() for j, w in self.warm_start.items()},
                    )
                )

    def record_where(self, blocks: BlockSet, uri: str) -> None:
        """Write each block's imputed cells of the filled columns (R's `where`: the missing
        ones and config `where`'s), where an earlier chain of the run has not."""
        columns = where.columns_of(self.plan)
        self.reduce(blocks, functools.partial(where.save_block, uri=uri, columns=columns))

    def run_fixed(self, blocks: BlockSet, models: dict[int, StepModel], sweeps: int) -> None:
        """New rows imputed with a run's final models (`sparkmice.models`): the initial fill
        from each variable's kept pool, then `sweeps` chained sweeps over these rows alone
        with every step's parameters fixed at the chain's last draw and its kept donors as
        the observed rows (nothing is refitted)."""
        seed, chain, plan = self.plan.config.seed, self.chain, self.plan
        pools = {j: models[j].pool for j in self.designs}
        blocks.update(functools.partial(_initial_fill, pools=pools, seed=seed, chain=chain))
        self.recompute_passive(blocks, None)
        for it in range(1, sweeps + 1):
            for j, design in self.designs.items():
                model = models[j]
                options = method_options(plan.config, plan.variables[j].name)
                options = {
                    o: options[o] for o in METHODS[model.method].impute_options if o in options
                }
                blocks.update(
                    functools.partial(
                        _impute_block, design=design, cols=model.cols, it=it,
                        method=model.method, params=model.params, pool=model.pool, seed=seed,
                        chain=chain, options=options, donors=model.donors,
                        post=plan.config.post.get(plan.variables[j].name),
                    )
                )  # fmt: skip
                self.recompute_passive(blocks, j)

    def reduce(self, blocks: BlockSet, fn: Callable[[Block], T], merge=add) -> T:
        self.exchanges += 1
        return blocks.reduce(fn, merge)

    def pools_of(self, blocks: BlockSet) -> None:
        """Samples of each visited variable's observed values (for the fill and `sample`)."""
        seed, chain = self.plan.config.seed, self.chain
        for j in self.designs:
            self.pools[j] = self.reduce(
                blocks, functools.partial(_local_pool, j=j, seed=seed, chain=chain), _concat_pools
            )

    def bin_edges(self, blocks: BlockSet) -> None:
        """Cut points of the numeric predictors of binned designs (module docstring)."""
        numeric = sorted({v for d in self.designs.values() for v in d.numeric_predictors()})
        if not numeric:
            return
        sources = {v: self.observed_sources(v) for v in numeric if self.plan.variables[v].derived}
        points = self.reduce(
            blocks,
            functools.partial(_quantile_points, variables=numeric, sources=sources),
            _merge_points,
        )
        cuts = {v: points[v].cuts() for v in numeric}
        self.designs = {j: d.with_cuts(cuts) for j, d in self.designs.items()}

    def observed_sources(self, v: int) -> list[int]:
        """The input variables a derived passive column is computed from (transitively)."""
        inputs = {p: ins for p, _, ins in self.passive}
        todo, found = list(inputs.get(v, {}).values()), set()
        while todo:
            u = todo.pop()
            if u in inputs and self.plan.variables[u].derived:
                todo.extend(inputs[u].values())
            else:
                found.add(u)
        return sorted(found)

    def fill(self, blocks: BlockSet) -> None:
        """The initial fill: every missing cell drawn from its variable's pool."""
        seed, chain = self.plan.config.seed, self.chain
        blocks.update(functools.partial(_initial_fill, pools=self.pools, seed=seed, chain=chain))
        self.recompute_passive(blocks, None)

    def recompute_passive(self, blocks: BlockSet, changed: int | None) -> None:
        """Passive columns reading variable `changed` (all of them if None), in order;
        a passive column reading an updated passive column is updated too."""
        todo, dirty = [], {changed}
        for p, formula, inputs in self.passive:
            if changed is None or dirty & set(inputs.values()):
                todo.append((p, formula, inputs))
                dirty.add(p)
        if todo:
            blocks.update(functools.partial(_passive_block, items=todo))

    def restore(
        self, blocks: BlockSet, iteration: int, state_uri: str | None, report: dict | None
    ) -> None:
        """Continue after sweep `iteration`: its imputed cells and Newton warm starts."""
        if state_uri is None or report is None:
            raise ValueError(f"resuming chain {self.chain} needs the state of sweep {iteration}")
        blocks.update(
            functools.partial(
                state.load_block,
                uri=state_uri,
                chain=self.chain,
                iteration=iteration,
                js=list(self.designs),
            )
        )
        self.warm_start = {int(j): np.asarray(w) for j, w in report["warm_start"].items()}
        self.recompute_passive(blocks, None)

    def step(self, blocks: BlockSet, j: int, it: int, keep_model: bool = False) -> None:
        """One variable step: summaries, collinearity, parameter draw, imputation (with
        `keep_model`, the step's model is kept in `self.models[j]`)."""
        plan, design = self.plan, self.designs[j]
        name = plan.variables[j].name
        method = METHODS[plan.method[name]]
        obs, x_all, x_min, x_max = self.reduce(
            blocks,
            functools.partial(
                _step_summaries,
                design=design,
                it=it,
                ranges=method.augments,
                cross=not method.binned,
            ),
            _merge_summaries,
        )
        keep: list[int] = []
        if method.uses_predictors:
            keep = list(range(len(design.columns)))
        if method.uses_predictors and not method.binned:
            for i, reason in collinear_predictors(obs):
                keep.remove(i)
                self.event(it, name, "predictor dropped", f"{design.names[i]}: {reason}")

        def step_for(kept: list[int]) -> StepData:
            cols = [0] + [i + 1 for i in kept]
            warm = self.warm_start.get(j)
            if warm is not None and warm.shape[0] != len(cols):
                warm = None
            bins = [design.bins[i] for i in kept] if design.bins is not None else []
            return StepData(
                moments=obs.take(kept + [len(design.columns)]),
                x_all=x_all.take(kept),
                x_min=x_min[kept],
                x_max=x_max[kept],
                n_levels=plan.variables[j].n_categories,
                sum_over_blocks=lambda f: self.reduce(
                    blocks,
                    functools.partial(_observed_apply, design=design, cols=cols, it=it, f=f),
                ),
                warm_start=warm,
                pool=self.pools[j],
                bins=tuple(b.n_bins for b in bins),
                unordered=tuple(b.unordered for b in bins),
                sum_over_blocks_with_context=lambda f: self.reduce(
                    blocks,
                    functools.partial(
                        _observed_apply_in_context,
                        design=design,
                        cols=cols,
                        it=it,
                        f=f,
                        seed=plan.config.seed,
                        chain=self.chain,
                    ),
                ),
            )

        options = method_options(plan.config, name)
        drawn = draw_parameters(
            method,
            keep,
            step_for,
            lambda: rng_for(plan.config.seed, self.chain, it, j, PARAMETERS),
            options,
        )
        if drawn.fallback is not None:
            detail = f"{method.name}: {drawn.reason}; imputed by {drawn.fallback}"
            self.event(it, name, "numerical fallback", detail)
            self.warm_start.pop(j, None)
        elif method.warm_start:
            self.warm_start[j] = drawn.params.coef
        cols = [0] + [i + 1 for i in drawn.keep]
        if keep_model:
            seed, chain = plan.config.seed, self.chain
            donors = self.reduce(
                blocks,
                functools.partial(
                    _local_donors, design=design, cols=cols, it=it, seed=seed, chain=chain
                ),  # fmt: skip
                Donors.merge,
            )
            pool = bounded_pool(self.pools[j], DONOR_ROWS, rng_for(seed, chain, it, j, KEPT_POOL))
            params = pool if drawn.params is self.pools[j] else drawn.params  # `sample`'s
            self.models[j] = StepModel(drawn.method.name, cols, params, pool, donors)
        blocks.update(
            functools.partial(
                _impute_block,
                design=design,
                cols=cols,
                it=it,
                method=drawn.method.name,
                params=drawn.params,
                pool=self.pools[j],
                seed=plan.config.seed,
                chain=self.chain,
                options={o: options[o] for o in drawn.method.impute_options if o in options},
                post=plan.config.post.get(name),
            )
        )
        self.recompute_passive(blocks, j)

    def event(self, it: int, variable: str, event: str, detail: str) -> None:
        self.events.append(
            {
                "chain": self.chain,
                "iteration": it,
                "variable": variable,
                "event": event,
                "detail": detail,
            }
        )

    def record_trace(self, blocks: BlockSet, it: int) -> list[dict[str, Any]]:
        """Mean and SD of each visited variable's imputed values (R mice's chainMean/Var)."""
        js = list(self.designs)
        sums = self.reduce(blocks, functools.partial(_imputed_sums, js=js))
        rows = []
        for (n, s, ss), j in zip(sums, js, strict=True):
            mean = s / n if n else float("nan")
            var = (ss - s * s / n) / (n - 1) if n > 1 else float("nan")
            rows.append(
                {
                    "chain": self.chain,
                    "iteration": it,
                    "variable": self.plan.variables[j].name,
                    "mean": mean,
                    "sd": float(np.sqrt(max(var, 0.0))) if n > 1 else float("nan"),
                }
            )
        return rows


def method_options(config: MiceConfig, name: str) -> dict[str, Any]:
    """The run's value of each option in `contract.OPTIONS` for variable `name`; options the
    run leaves unset are left out (the kernel's default applies)."""
    values = {
        "separation": config.separation.get(name),
        "donors": config.donors,
        "minbucket": config.minbucket,
        "cp": config.cp,
        "ntree": config.ntree,
        "polyreg_prior": config.polyreg_prior,
    }
    return {option: value for option, value in values.items() if value is not None}


@dataclass(frozen=True)
class Drawn:
    """A step's parameters, the method and kept predictors that gave them, and the
    fallback taken (None: the method as asked) with the reason (no data values)."""

    method: Method
    keep: list[int]
    params: Any
    fallback: str | None = None
    reason: str | None = None


def draw_parameters(
    method: Method,
    keep: list[int],
    step_for: Callable[[list[int]], StepData],
    rng: Callable[[], np.random.Generator],
    options: dict[str, Any],
) -> Drawn:
    """The one call into a method's `parameters`, with the fallbacks of the module
    docstring: the method on `keep`, then on the intercept alone, then `sample`.
    `step_for(kept)` gives the step's data on predictors `kept`; `rng()` a fresh copy of
    the step's parameter stream for each attempt."""
    sample = METHODS["sample"]
    fit_options = {o: options[o] for o in method.fit_options if o in options}
    if method.uses_predictors and step_for([]).moments.n < MIN_OBSERVED:
        few = f"fewer than {MIN_OBSERVED} observed values"
        return Drawn(sample, [], sample.parameters(step_for([]), rng()), "sample", few)
    attempts: list[tuple[list[int], str | None]] = [(keep, None)]
    if keep and method.uses_predictors:
        attempts.append(([], "the intercept-only model"))
    reason = None
    for kept, fallback in attempts:
        try:
            params = method.parameters(step_for(kept), rng(), **fit_options)
        except NUMERICAL_FAILURES:
            reason = "singular or non-positive-definite system"
            continue
        if all_finite(params):
            return Drawn(method, kept, params, fallback, reason)
        reason = "non-finite parameters"
    return Drawn(sample, [], sample.parameters(step_for([]), rng()), "sample", reason)


def all_finite(params: Any) -> bool:
    """Whether every number of `params` (a number, an array, or a dataclass of them) is
    finite; other fields (counts, pools) are not checked."""
    if dataclasses.is_dataclass(params):
        parts = [getattr(params, f.name) for f in dataclasses.fields(params)]
    else:
        parts = [params]
    return all(bool(np.all(np.isfinite(p))) for p in parts if isinstance(p, float | np.ndarray))


# -- block functions (module level so the per-step engine can ship them to executors) --------
def _design(block: Block, design: Design, it: int) -> tuple[np.ndarray, int]:
    """The block's design for this step, built once per step: intercept, predictors and
    the target's categories, with the rows the model is fitted on first (the target
    observed, the row not `ignore`d; so that every model's fitted and missing rows are
    views), then the rows to impute, and how many are fitted on. Observed rows that are
    ignored are in neither part."""
    key = (it, design.target)
    if block.cache.get("key") != key:
        missing = block.missing[:, design.target]
        fitted = ~missing if block.ignored is None else ~missing & ~block.ignored
        rows = np.concatenate([np.flatnonzero(fitted), np.flatnonzero(missing)])
        z = design.build(block.values, rows, block.missing, block.bin_codes)
        block.cache = {"key": key, "z": z, "n_obs": len(rows) - int(missing.sum())}  # fitted
    return block.cache["z"], block.cache["n_obs"]


def _model_rows(
    block: Block, design: Design, it: int, cols: list[int]
) -> tuple[np.ndarray, np.ndarray, int]:
    """The step's model design (columns `cols` after dropped predictors), y, n observed."""
    z, n_obs = _design(block, design, it)
    x = z[:, :-1]
    if len(cols) != x.shape[1]:
        if block.cache.get("cols") != cols:
            block.cache.update(cols=cols, x_cols=np.asfortranarray(x[:, cols]))
        x = block.cache["x_cols"]
    return x, z[:, -1], n_obs


def _local_pool(block: Block, j: int, seed: int, chain: int) -> ObservedPool:
    observed = ~block.missing[:, j]
    if block.ignored is not None:
        observed &= ~block.ignored
    y = block.values[observed, j]
    if len(y) <= POOL_SIZE:
        return ObservedPool(y.copy(), np.ones(len(y)))
    rng = rng_for(seed, chain, 0, j, POOL, block.index)
    return ObservedPool(
        rng.choice(y, POOL_SIZE, replace=False), np.full(POOL_SIZE, len(y) / POOL_SIZE)
    )


def _local_donors(
    block: Block, design: Design, cols: list[int], it: int, seed: int, chain: int
) -> Donors:
    """The block's fitting rows with the smallest random keys (at most DONOR_ROWS)."""
    x, y, n_obs = _model_rows(block, design, it, cols)
    keys = rng_for(seed, chain, it, design.target, DONORS, block.index).random(n_obs)
    keep = np.argsort(keys, kind="stable")[:DONOR_ROWS]
    return Donors(x[:n_obs][keep], y[:n_obs][keep], keys[keep])


def _concat_pools(a: ObservedPool, b: ObservedPool) -> ObservedPool:
    return ObservedPool(
        np.concatenate([a.values, b.values]), np.concatenate([a.weights, b.weights])
    )


def _initial_fill(block: Block, pools: dict[int, ObservedPool], seed: int, chain: int) -> None:
    for j, pool in pools.items():
        miss = block.missing[:, j]
        if miss.any():
            rng = rng_for(seed, chain, 0, j, IMPUTE, block.index)
            block.values[miss, j] = pool.draw(int(miss.sum()), rng)
    block.cache = {}


def _step_summaries(block: Block, design: Design, it: int, ranges: bool, cross: bool = True):
    """Moments of [x, y] over the observed rows (without `cross`, n and means only: a
    binned method's); with `ranges`, also x's means, variances, minima and maxima over all
    rows (for the augmentation rows of logreg/polyreg)."""
    z, n_obs = _design(block, design, it)
    obs = (Moments.of if cross else Moments.means_of)(z[:n_obs, 1:])
    x = z[:, 1:-1]
    k = x.shape[1]
    if not ranges:
        return obs, Moments.diagonal_of(np.zeros((0, k))), np.zeros(k), np.zeros(k)
    if len(x):
        return obs, Moments.diagonal_of(x), x.min(axis=0), x.max(axis=0)
    return obs, Moments.diagonal_of(x), np.full(k, np.inf), np.full(k, -np.inf)


def _merge_summaries(a, b):
    return a[0].merge(b[0]), a[1].merge(b[1]), np.minimum(a[2], b[2]), np.maximum(a[3], b[3])


def _observed_apply(block: Block, design: Design, cols: list[int], it: int, f):
    x, y, n_obs = _model_rows(block, design, it, cols)
    return f(x[:n_obs], y[:n_obs])


def _observed_apply_in_context(
    block: Block, design: Design, cols: list[int], it: int, f, seed: int, chain: int
):
    """f(x_obs, y_obs, context): the block's fit stream and a scratch dict for the step
    (kept in the block's design cache, so gone when the block changes)."""
    x, y, n_obs = _model_rows(block, design, it, cols)
    scratch = block.cache.setdefault(("scratch", tuple(cols)), {})
    key = (seed, chain, it, design.target, FIT, block.index)
    return f(x[:n_obs], y[:n_obs], BlockContext(key, scratch))


def _quantile_points(
    block: Block, variables: list[int], sources: dict[int, list[int]]
) -> dict[int, QuantilePoints]:
    """Quantile points of each variable's observed cells in the block (a derived column:
    the rows where all its inputs are observed)."""
    out = {}
    for v in variables:
        observed = ~block.missing[:, sources[v]].any(axis=1) if v in sources else None
        if observed is None:
            observed = ~block.missing[:, v]
        out[v] = QuantilePoints.of(block.values[observed, v])
    return out


def _merge_points(
    a: dict[int, QuantilePoints], b: dict[int, QuantilePoints]
) -> dict[int, QuantilePoints]:
    return {v: a[v] + b[v] for v in a}


def _impute_block(
    block: Block,
    design: Design,
    cols: list[int],
    it: int,
    method: str,
    params: Any,
    pool: ObservedPool,
    seed: int,
    chain: int,
    options: dict[str, Any],
    donors: Donors | None = None,
    post: dict[str, Any] | None = None,
) -> None:
    """Impute the block's missing cells of the step's target; with `donors` (a run's kept
    fitting rows: new data), those are the observed rows the method sees, not the block's."""
    j = design.target
    miss = block.missing[:, j]
    if not miss.any():
        return
    x, y, n_obs = _model_rows(block, design, it, cols)
    if donors is None:
        view = BlockView(x[:n_obs], y[:n_obs], x[n_obs:], pool)
    else:
        view = BlockView(donors.x, donors.y, x[n_obs:], pool)
    rng = rng_for(seed, chain, it, j, IMPUTE, block.index)
    imputer = METHODS[method]
    values = imputer.impute(view, params, rng, **options)
    if not imputer.draws_levels:
        values = design.levels_of(values, rng)
    if post:
        values = post_process(values, post)
    block.values[miss, j] = values
    block.cache = {}


def post_process(values: np.ndarray, steps: dict[str, Any]) -> np.ndarray:
    """R mice's `post` for a variable's imputed values, as declared (never evaluated):
    `round: d` rounds to d decimals (half to even, as R's round), then `squeeze: [lo, hi]`
    moves values below lo to lo and above hi to hi (R's squeeze), so the bounds always hold."""
    if "round" in steps:
        values = np.round(values, int(steps["round"]))
    if "squeeze" in steps:
        lo, hi = steps["squeeze"]
        values = np.clip(values, float(lo), float(hi))
    return values


def _passive_block(block: Block, items: list[tuple[int, str, dict[str, int]]]) -> None:
    """Recompute passive columns' missing cells (all cells of a derived column)."""
    for p, formula, inputs in items:
        values = passive.evaluate(formula, {c: block.values[:, i] for c, i in inputs.items()})
        miss = block.missing[:, p]
        block.values[miss, p] = values[miss]
    block.cache = {}


def _imputed_sums(block: Block, js: list[int]) -> np.ndarray:
    out = np.zeros((len(js), 3))
    for i, j in enumerate(js):
        v = block.values[block.missing[:, j], j]
        out[i] = len(v), v.sum(), (v * v).sum()
    return out
