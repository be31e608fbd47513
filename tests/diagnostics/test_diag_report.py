"""The HTML report: valid, complete, self-contained; the API, Spark path and CLI job."""

from __future__ import annotations

import argparse
import base64
import re
from html.parser import HTMLParser

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkmice.diagnostics import job
from sparkmice.diagnostics.report import SECTIONS, build_report

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
POOLED = pd.DataFrame(
    {
        "term": ["(Intercept)", "age"],
        "estimate": [20.1, 0.08],
        "std_error": [1.2, 0.02],
        "df": [30.5, 41.2],
        "fmi": [0.21, 0.62],
    }
)


class _Checker(HTMLParser):
    """Checks nesting of tags; collects ids, image sources and link targets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.images: list[str] = []
        self.references: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self.references += [v for k, v in attrs.items() if k in ("src", "href", "action") and v]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _check(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def _assert_offline(checker: _Checker, page: str) -> None:
    for reference in checker.references:
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    assert "@import" not in page and "url(" not in page


def test_report_is_valid_complete_and_self_contained(run_dir, original, tmp_path):
    report = build_report(run_dir, original=original, pooled=POOLED)
    checker = _check(report.html)
    assert checker.doctype
    assert set(SECTIONS) <= set(checker.ids)
    _assert_offline(checker, report.html)
    assert set(report.figures) == {"trace", "density", "proportions", "pattern", "flux"}
    assert len(checker.images) == len(report.figures)
    for source in checker.images:
        png = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    text = re.sub(r"<[^>]+>", " ", report.html)
    assert "Not converged (R-hat &gt; 1.1): " in report.html and "chl" in text
    assert "&lt;separation&gt; &amp; pseudo-rows" in report.html  # events are escaped
    assert "dropped_predictor" in text and "(Intercept)" in text and "fmi" in text
    assert "Some terms have fmi &gt; 0.5" in report.html
    assert report.tables["rhat"].set_index("variable").loc["chl", "converged"] == False  # noqa: E712
    path = report.write(tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == report.html
    fragment = report._repr_html_()
    assert fragment.startswith('<div class="sparkmice-report">') and "<html" not in fragment
    _check(fragment)


def test_report_without_original_or_pooled(run_dir):
    report = build_report(run_dir)
    checker = _check(report.html)
    assert set(SECTIONS) <= set(checker.ids)
    assert set(report.figures) == {"trace"}
    assert "Pass the original data" in report.html
    assert "No pooled analysis was given" in report.html


def test_missing_run_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not the output directory of a sparkmice run"):
        build_report(tmp_path)


@pytest.mark.spark
def test_spark_report_equals_pandas_report(spark, run_dir, original):
    on_pandas = build_report(run_dir, original=original)
    on_spark = build_report(run_dir, original=original, spark=spark)  # pandas original
    for name in ("histograms", "levels", "md_pattern", "flux", "rhat"):
        pd.testing.assert_frame_equal(on_spark.tables[name], on_pandas.tables[name])
    _check(on_spark.html)


@pytest.mark.spark
def test_job_writes_the_report(spark, run_dir, original, tmp_path, capsys):
    source = tmp_path / "original.parquet"
    pq.write_table(pa.Table.from_pandas(original, preserve_index=False), source)
    pooled = tmp_path / "pooled.csv"
    POOLED.to_csv(pooled, index=False)
    output = tmp_path / "report.html"
    parser = job.add_arguments(argparse.ArgumentParser())
    argv = [
        "--imputed",
        str(run_dir),
        "--output",
        str(output),
        "--original",
        str(source),
        "--pooled",
        str(pooled),
    ]
    assert job.run(parser.parse_args(argv)) == 0
    out = capsys.readouterr().out
    assert "Wrote" in out and "Not converged" in out
    checker = _check(output.read_text(encoding="utf-8"))
    assert len(checker.images) == 5
    missing = parser.parse_args(["--imputed", str(tmp_path / "nope"), "--output", str(output)])
    assert job.run(missing) == 2
    assert "not the output directory" in capsys.readouterr().err
