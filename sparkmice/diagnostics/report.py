"""One self-contained HTML report of an imputed run: what a user checks before pooling.

``build_report(DIR)`` reads the run's ``_sparkmice/`` files (config, trace, events,
timings) and summarises observed against imputed values and the missing-data pattern of
the original data: given, or else rebuilt from the run itself (one imputation with the
cells its record of imputed cells names missing again, `sparkmice.io.imputed`). The
imputed table is reduced by Spark aggregations when a Spark session or a Spark original
is given, by pandas otherwise. Images are embedded as base64
PNG and the page loads nothing from the network, so it opens offline, in a notebook
(``_repr_html_``) and with Databricks' ``displayHTML(report.html)``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sparkmice import privacy
from sparkmice.diagnostics import distributions, missingness, plots
from sparkmice.diagnostics.rhat import THRESHOLD, convergence_message, rhat_table
from sparkmice.io.imputed import (
    NoWhereError,
    original_frame,
    read_where,
    spark_original,
    where_option_of,
)
from sparkmice.io.run import RunFolder
from sparkmice.names import CONFIG_FILE, IMPUTATION

MAX_TABLE_ROWS = 200
SECTIONS = {
    "configuration": "Run configuration",
    "methods": "Methods and predictor matrix",
    "events": "Logged events",
    "timings": "Timings per sweep",
    "convergence": "Convergence",
    "plausibility": "Observed and imputed values",
    "missingness": "Missing-data pattern",
    "pooled": "Pooled analysis",
}

__all__ = ["Report", "Run", "build_report", "read_imputed_pandas", "read_run"]

_CSS = """
.sparkmice-report{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
 color:#1d2330;max-width:1180px;margin:0 auto;padding:8px 16px;line-height:1.45}
.sparkmice-report h1{font-size:1.6em;margin:.4em 0}
.sparkmice-report h2{font-size:1.25em;border-bottom:2px solid #006CC2;padding-bottom:3px;
 margin-top:1.8em}
.sparkmice-report h3{font-size:1.05em;margin:1.2em 0 .4em}
.sparkmice-report table{border-collapse:collapse;font-size:.85em;margin:.4em 0 1em}
.sparkmice-report th,.sparkmice-report td{border:1px solid #d0d5de;padding:3px 8px;
 text-align:right}
.sparkmice-report th{background:#eef2f8}
.sparkmice-report td.on{background:#006CC2;color:#fff;text-align:center}
.sparkmice-report td.off{color:#b0b6c0;text-align:center}
.sparkmice-report img{max-width:100%;height:auto;display:block;margin:.5em 0}
.sparkmice-report .note{padding:8px 12px;border-radius:4px;margin:.6em 0}
.sparkmice-report .ok{background:#e7f5ea;border-left:4px solid #2e8b45}
.sparkmice-report .warn{background:#fdecef;border-left:4px solid #B61A51}
.sparkmice-report .info{background:#eef2f8;border-left:4px solid #7a8699}
.sparkmice-report nav a{margin-right:1em}
"""


@dataclass
class Run:
    """The files an imputed run writes beside its data, under ``DIR/_sparkmice``."""

    config: dict[str, Any]
    trace: pd.DataFrame
    events: pd.DataFrame
    timings: pd.DataFrame

    def variables(self, kinds: tuple[str, ...]) -> list[str]:
        """Incomplete variables (n_missing > 0) of the given kinds, in config order."""
        return [
            v["name"]
            for v in self.config.get("variables", [])
            if v.get("kind") in kinds and v.get("n_missing", 0) > 0
        ]

    def levels(self) -> dict[str, list[Any]]:
        """Levels of the categorical variables, from the config."""
        return {v["name"]: v["levels"] for v in self.config.get("variables", []) if v.get("levels")}

    def private(self) -> dict[str, int]:
        """Private columns (their levels are not in the config) and their number of levels."""
        return {
            v["name"]: int(v.get("n_levels") or 0)
            for v in self.config.get("variables", [])
            if v.get("private")
        }

    @property
    def min_cell_count(self) -> int:
        """Counts below this are shown as "<n" (the run's option; 5 for older runs)."""
        return int((self.config.get("config") or {}).get("min_cell_count") or 5)


def read_run(imputed_dir: str | Path) -> Run:
    """Read config.json, trace.csv, events.csv and timings.csv of an imputed run."""
    run = RunFolder(str(imputed_dir))
    config = run.read_config()
    if config is None:
        raise FileNotFoundError(
            f"{run.meta(CONFIG_FILE).uri} not found: {imputed_dir} is not the output "
            "directory of a sparkmice run (pass the directory given to 'sparkmice impute "
            "--output')."
        )
    tables = run.read_tables()
    return Run(config, tables["trace"], tables["events"], tables["timings"])


def read_imputed_pandas(imputed_dir: str | Path) -> pd.DataFrame:
    """The long imputed table as pandas: only the run's committed chains."""
    return RunFolder(str(imputed_dir)).read()


@dataclass
class Report:
    """The rendered report: ``html`` (a whole page), its ``figures`` and ``tables``."""

    html: str
    fragment: str
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (UTF-8) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        """The report as a fragment (scoped style, no <html>) for notebooks."""
        return self.fragment


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any) -> str:
    """Numbers for tables: 4 significant digits, integers as they are."""
    if isinstance(value, float):
        if value != value:
            return "—"
        if value in (float("inf"), float("-inf")):
            return "∞" if value > 0 else "-∞"
        return f"{value:.4g}"
    return str(value)


def _table(frame: pd.DataFrame, index: bool = False, limit: int = MAX_TABLE_ROWS) -> str:
    """An escaped HTML table of at most ``limit`` rows (with a note when cut)."""
    shown = frame.head(limit)
    text = shown.to_html(
        index=index, border=0, na_rep="—", escape=True, float_format=_number, classes="table"
    )
    if len(frame) > limit:
        text += _note(f"Showing the first {limit} of {len(frame):,} rows.", "info")
    return text


def _small_cells(
    frame: pd.DataFrame, min_count: int, columns: list[str], rows: Sequence[Any] = ()
) -> pd.DataFrame:
    """A copy for display with the counts of `columns` (and of every cell of `rows`) below
    `min_count` written "<min_count"."""
    shown = frame.copy()
    for c in columns:
        shown[c] = frame[c].map(lambda n: privacy.count_text(n, min_count))
    if rows:
        shown = shown.astype(object)
    for r in rows:
        shown.loc[r] = frame.loc[r].map(lambda n: privacy.count_text(n, min_count))
    return shown


def _coded_levels(levels: pd.DataFrame, private: dict[str, int]) -> pd.DataFrame:
    """`level_counts` output with each private column's levels replaced by their codes
    ("level 3 of 152", numbered in sorted order: the plan's order unless `levels` declared
    another)."""
    out = levels.copy()
    for name, n_levels in private.items():
        rows = out["variable"] == name
        order = list(dict.fromkeys(out.loc[rows, "level"]))
        codes = {lev: privacy.level_code(i, n_levels or len(order)) for i, lev in enumerate(order)}
        out.loc[rows, "level"] = out.loc[rows, "level"].map(codes)
    return out


def _note(text: str, kind: str) -> str:
    return f'<div class="note {kind}">{_esc(text)}</div>'


def _image(figure: Figure, alt: str) -> str:
    """The figure as an embedded base64 PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _settings(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Config entries as (dotted key, value) rows; nested dicts flattened, lists as JSON."""
    rows = []
    for key, value in config.items():
        if isinstance(value, dict):
            rows += _settings(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value if isinstance(value, str) else json.dumps(value)))
    return rows


def _config_section(run: Run, imputed_dir: str) -> str:
    shown = run.config.items()
    skip = {"variables", "predictor_matrix", "visit_sequence"}
    rows = [("output", str(imputed_dir)), *_settings({k: v for k, v in shown if k not in skip})]
    return _table(pd.DataFrame(rows, columns=["setting", "value"]))


def _methods_section(run: Run) -> str:
    variables = pd.DataFrame(run.config.get("variables", []))
    if variables.empty:
        return _note("The config lists no variables.", "info")
    private = run.private()

    def levels_cell(name: str, levels: Any) -> str:
        if name in private:
            return f"{private[name]} levels (private)"
        return ", ".join(map(str, levels)) if isinstance(levels, list) else ""

    variables = variables.reindex(columns=["name", "kind", "method", "n_missing", "levels"])
    variables["levels"] = list(map(levels_cell, variables["name"], variables["levels"]))
    out = _table(_small_cells(variables, run.min_cell_count, ["n_missing"]))
    sequence = run.config.get("visit_sequence") or []
    out += f"<p><b>Visit sequence:</b> {_esc(' → '.join(map(str, sequence)) or '—')}</p>"
    matrix = run.config.get("predictor_matrix") or {}
    if matrix:
        names = [v["name"] for v in run.config.get("variables", [])]
        out += "<h3>Predictor matrix</h3><p>Row: imputed variable; column: predictor.</p>"
        out += "<table><tr><th></th>" + "".join(f"<th>{_esc(n)}</th>" for n in names) + "</tr>"
        for target, predictors in matrix.items():
            cells = "".join(
                '<td class="on">1</td>' if n in predictors else '<td class="off">0</td>'
                for n in names
            )
            out += f"<tr><th>{_esc(target)}</th>{cells}</tr>"
        out += "</table>"
    return out


def _events_section(run: Run) -> str:
    if run.events.empty:
        return _note("No events were logged (no predictors dropped, no fallbacks).", "ok")
    counts = run.events.groupby("event").size().rename("count").reset_index()
    return "<h3>Events by kind</h3>" + _table(counts) + "<h3>All events</h3>" + _table(run.events)


def _timings_section(run: Run) -> str:
    if run.timings.empty:
        return _note("No timings were recorded.", "info")
    wide = run.timings.pivot_table(
        index="iteration", columns="chain", values="seconds", aggfunc="sum"
    )
    wide.columns = [f"chain {c}" for c in wide.columns]
    wide["mean"] = wide.mean(axis=1)
    wide.loc["total"] = wide.sum(axis=0)
    total = f"{run.timings['seconds'].sum():,.1f} s"
    if "exchanges" in run.timings.columns:
        total += f" and {int(run.timings['exchanges'].sum()):,} exchanges of sums"
    return (
        "<p>Seconds per sweep (one iteration over all variables) and chain; "
        f"{total} in all.</p>" + _table(wide, index=True)
    )


def _convergence_section(run: Run, threshold: float, figures: dict, tables: dict) -> str:
    if run.trace.empty:
        return _note("No trace was recorded, so convergence cannot be assessed.", "info")
    table = rhat_table(run.trace, threshold)
    tables["rhat"] = table
    message = convergence_message(table, threshold)
    figures["trace"] = plots.trace_plot(run.trace)
    converged = table["converged"]
    kind = "warn" if converged.eq(False).any() else "info" if converged.isna().any() else "ok"
    return (
        _note(message, kind)
        + "<p>Rank-normalised split R-hat (Vehtari et al. 2021) of the mean and SD of the "
        f"imputed values over the second half of the iterations; above {threshold:g} the "
        "chains have not mixed. Runs too short for R-hat to tell (min_maxit) are not "
        "judged. Categorical variables are traced by their integer codes.</p>"
        + _table(table)
        + "<h3>Trace plots</h3><p>Mean and SD of the imputed values per iteration, one "
        "line per chain: healthy chains intermingle with no trend.</p>"
        + _image(figures["trace"], "trace plot")
    )


def _plausibility_section(
    run: Run, imputed: Any, original: Any, bins: int, figures: dict, tables: dict
) -> str:
    if original is None:
        return _note(
            "Pass the original data (original=..., or --original) to compare "
            "observed and imputed values.",
            "info",
        )
    out = (
        "<p>Imputed values should look like values that could have been observed; "
        "differences are expected when data are missing at random, not implausible "
        "values. Blue: observed; red: imputed, one line per imputation.</p>"
    )
    continuous = [v for v in run.variables(("continuous",)) if v in original.columns]
    categorical = [
        v for v in run.variables(("binary", "nominal", "ordered")) if v in original.columns
    ]
    if continuous:
        hist = distributions.histograms(imputed, original, continuous, bins)
        tables["histograms"] = hist
        figures["density"] = plots.density_plot(distributions.density_curves(hist))
        out += "<h3>Continuous variables: densities</h3>" + _image(figures["density"], "densities")
    if categorical:
        levels = distributions.level_counts(imputed, original, categorical, run.levels())
        levels = _coded_levels(levels, run.private())
        tables["levels"] = levels
        figures["proportions"] = plots.proportion_plot(levels, min_count=run.min_cell_count)
        out += "<h3>Categorical variables: level proportions</h3>" + _image(
            figures["proportions"], "level proportions"
        )
    if not continuous and not categorical:
        out += _note("No incomplete variable of the config is in the original data.", "info")
    return out


def _missingness_section(run: Run, original: Any, figures: dict, tables: dict) -> str:
    if original is None:
        counts = pd.DataFrame(
            [(v["name"], v.get("n_missing")) for v in run.config.get("variables", [])],
            columns=["variable", "n_missing"],
        )
        return _note(
            "Pass the original data to see the missing-data pattern and flux.", "info"
        ) + _table(_small_cells(counts, run.min_cell_count, ["n_missing"]))
    names = [v["name"] for v in run.config.get("variables", []) if v["name"] in original.columns]
    patterns = missingness.missing_patterns(original, names or None)
    pattern = missingness.md_pattern(patterns)
    flux = missingness.flux(patterns)
    fraction = missingness.fraction_missing(patterns)
    tables.update(md_pattern=pattern, flux=flux, fraction_missing=fraction.to_frame())
    figures["pattern"] = plots.pattern_plot(pattern, min_count=run.min_cell_count)
    figures["flux"] = plots.flux_plot(flux)
    summary = pd.DataFrame({"n_missing": patterns.n_missing, "fraction_missing": fraction})
    small = run.min_cell_count
    summary.loc[(summary["n_missing"] > 0) & (summary["n_missing"] < small), "fraction_missing"] = (
        float("nan")  # the fraction of a small count tells the count
    )
    summary = _small_cells(summary, small, ["n_missing"])
    pattern = _small_cells(pattern, small, ["count"], ["total"])
    return (
        f"<p>{patterns.n_rows:,} rows, {len(pattern) - 1} distinct patterns.</p>"
        + _table(summary, index=True)
        + "<h3>Patterns (as md.pattern)</h3><p>1 = observed, 0 = missing; columns by "
        "increasing missingness; last row: missing per column.</p>"
        + _table(pattern, index=True, limit=50)
        + _image(figures["pattern"], "missing-data pattern")
        + "<h3>Influx and outflux (as flux)</h3><p>Influx: how well a variable's missing "
        "cells connect to observed data; outflux: how useful its observed values are for "
        "imputing the others (van Buuren 2018, §4.1.3).</p>"
        + _table(flux, index=True)
        + _image(figures["flux"], "influx and outflux")
    )


REBUILT = (
    "The original data were rebuilt from the run: its first imputation with the cells the "
    "run imputed (its record in _sparkmice/where) missing again."
)


def _where_of(folder: RunFolder, spark: Any) -> Any:
    """The run's record of imputed cells; None for a run without committed chains, or
    without the record (an older sparkmice), or with config `where` (the observed cells it
    marks were replaced: the input cannot be rebuilt)."""
    if where_option_of(folder.read_config() or {}):
        return None
    try:
        return read_where(folder, spark) if folder.chains() else None
    except NoWhereError:
        return None


def _original_of_run(folder: RunFolder, imputed: Any, where: Any, spark: Any) -> Any:
    """The run's input rebuilt from its first imputation and its record of imputed cells."""
    first = folder.chains()[0]
    if spark is not None:
        return spark_original(imputed.where(imputed[IMPUTATION] == first).drop(IMPUTATION), where)
    one = imputed[imputed[IMPUTATION] == first].drop(columns=[IMPUTATION])
    return original_frame(one.reset_index(drop=True), where)


def _pooled_section(pooled: pd.DataFrame | None) -> str:
    if pooled is None:
        return _note("No pooled analysis was given (pooled=..., or --pooled).", "info")
    text = (
        "<p>Rubin's rules over the imputations; fmi is the fraction of missing "
        "information about each term.</p>" + _table(pooled)
    )
    if "fmi" in pooled.columns and (pooled["fmi"] > 0.5).any():
        text += _note(
            "Some terms have fmi > 0.5: more imputations (m) make their standard "
            "errors more stable.",
            "warn",
        )
    return text


def _page(title: str, sections: dict[str, str]) -> str:
    """The fragment: scoped style, title, navigation and the sections in order."""
    nav = "".join(f'<a href="#{key}">{_esc(SECTIONS[key])}</a>' for key in sections)
    body = "".join(
        f'<section id="{key}"><h2>{_esc(SECTIONS[key])}</h2>{text}</section>'
        for key, text in sections.items()
    )
    return (
        f'<div class="sparkmice-report"><style>{_CSS}</style><h1>{_esc(title)}</h1>'
        f"<nav>{nav}</nav>{body}</div>"
    )


def build_report(
    imputed_dir: str | Path,
    original: Any = None,
    pooled: pd.DataFrame | None = None,
    spark: Any = None,
    threshold: float = THRESHOLD,
    bins: int = distributions.DEFAULT_BINS,
) -> Report:
    """Build the diagnostics report of the imputed run in ``imputed_dir``.

    ``original``: the incomplete input (pandas or Spark DataFrame) for the observed vs
    imputed plots and the missing-data pattern; ``pooled``: a pooled table (term,
    estimate, std_error, df, fmi, ...); ``spark``: a session to read the imputed table
    with (used too when ``original`` is a Spark DataFrame); without either the table is
    read with pyarrow into pandas. A run whose R-hat exceeds ``threshold`` is reported
    as not converged; that is a finding, not an error.
    """
    imputed_dir = str(imputed_dir)
    run = read_run(imputed_dir)
    if spark is None and missingness.is_spark_frame(original):
        spark = original.sparkSession
    folder = RunFolder(imputed_dir)
    imputed, rebuilt = None, False
    if original is not None:
        imputed = folder.read(spark)
    elif (where := _where_of(folder, spark)) is not None:
        imputed = folder.read(spark)
        original, rebuilt = _original_of_run(folder, imputed, where, spark), True
    figures: dict[str, Figure] = {}
    tables: dict[str, pd.DataFrame] = {}
    sections = {
        "configuration": _config_section(run, imputed_dir),
        "methods": _methods_section(run),
        "events": _events_section(run),
        "timings": _timings_section(run),
        "convergence": _convergence_section(run, threshold, figures, tables),
        "plausibility": (_note(REBUILT, "info") if rebuilt else "")
        + _plausibility_section(run, imputed, original, bins, figures, tables),
        "missingness": _missingness_section(run, original, figures, tables),
        "pooled": _pooled_section(pooled),
    }
    title = f"sparkmice imputation report: {posixpath.basename(imputed_dir.rstrip('/'))}"
    fragment = _page(title, sections)
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title></head><body>{fragment}</body></html>"
    )
    return Report(html=page, fragment=fragment, figures=figures, tables=tables)
