"""csv_output: the imputed chains as CSV files (a worked example of adding an output format;
see docs/architecture.md).

A chain is committed as the Parquet format commits it: the attempt's files, listed by the
chain's record (`sparkmice.io.parquet.ListedFiles`); only the files differ. Each is one CSV
file with a header row, written by pyarrow from the chain's Arrow rows (in this process or
in the Spark tasks), missing cells empty and strings quoted. CSV carries no types, so the
readers take them from the rows' Arrow schema that the chain's record keeps: numbers,
strings, booleans, dates and timestamps come back as they were written (a categorical comes
back with its levels in order of appearance).

To make it a format of the package: save this file as a module your Spark workers import
too (e.g. mypackage/csv_output.py, shipped like sparkmice itself) and register it with one
line, `sparkmice.io.run.FORMATS["csv"] = "mypackage.csv_output"`; then `format="csv"`
(`--format csv`) writes it, and `read_imputed`, `complete()` and `pool` read it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from pyarrow import fs as pafs

from sparkmice.io.parquet import ListedFiles


class CsvFiles:
    """One CSV file per writer; read back with the recorded Arrow schema's types."""

    suffix = ".csv"

    def write(self, table: pa.Table, filesystem: pafs.FileSystem, path: str) -> None:
        with filesystem.open_output_stream(path) as f:
            pacsv.write_csv(table, f)

    def rows(self, filesystem: pafs.FileSystem, path: str, schema: pa.Schema | None) -> int:
        """The rows, by parsing the file with its types (a row that does not parse is an
        error here, before the chain is committed)."""
        return self._read(filesystem, path, schema).num_rows

    def read(
        self, filesystem: pafs.FileSystem, paths: list[str], schema: pa.Schema | None
    ) -> pa.Table:
        tables = [self._read(filesystem, path, schema) for path in paths]
        return pa.concat_tables(tables, promote_options="permissive")

    def spark_schema(self, spark: Any, uris: list[str], schema: pa.Schema | None) -> Any:
        from pyspark.sql.pandas.types import from_arrow_schema

        fields = [  # Spark has no dictionary type: a categorical is read as its values
            pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
            for f in _typed(schema)
        ]
        return from_arrow_schema(pa.schema(fields))

    def read_spark(self, spark: Any, uris: list[str], spark_schema: Any) -> Any:
        """Spark's CSV reader, told pyarrow's dialect: quotes escaped by doubling, quoted
        strings may hold newlines, timestamps as pyarrow writes them; an empty unquoted cell
        is missing (Spark's own null mark, "", would also turn "" into null: a NUL cell
        stands in for it, which pyarrow never writes bare)."""
        return (
            spark.read.schema(spark_schema)
            .option("header", True)
            .option("escape", '"')
            .option("multiLine", True)
            .option("nullValue", "\u0000")
            .option("timestampFormat", "yyyy-MM-dd HH:mm:ss[.SSSSSS][X]")
            .csv(uris)
        )

    def _read(self, filesystem: pafs.FileSystem, path: str, schema: pa.Schema | None) -> pa.Table:
        schema = _typed(schema)
        options = pacsv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # "" is an empty string, a bare empty cell null
        )
        with filesystem.open_input_stream(path) as f:
            return pacsv.read_csv(f, convert_options=options)


def _typed(schema: pa.Schema | None) -> pa.Schema:
    if schema is None:
        raise ValueError("a CSV chain's record holds no schema: rewrite the chain (--chains k)")
    return schema


OUTPUT = ListedFiles("csv", CsvFiles())
