"""The partition keys computed on the driver land where Spark's hash partitioning puts them
(so the input's blocks reach their tasks without a job to find the keys)."""

from __future__ import annotations

import pytest

from sparkmice.io.spark import partition_keys, spark_int_hash

pytestmark = pytest.mark.spark


def test_int_hash_is_sparks(spark) -> None:
    from pyspark.sql import functions as F

    ints = F.col("id").cast("int")
    edges = spark.range(2**31 - 5, 2**31).union(spark.range(-(2**31), 5 - 2**31))
    rows = spark.range(-2000, 2000).union(edges)
    rows = rows.select(ints.alias("k"), F.hash(ints).alias("h")).collect()
    assert [spark_int_hash(r["k"]) for r in rows] == [r["h"] for r in rows]


@pytest.mark.parametrize("n", [1, 2, 3, 8, 13])
def test_each_key_lands_in_its_partition(spark, n: int) -> None:
    from pyspark.sql import functions as F

    keys = partition_keys(n)
    frame = spark.createDataFrame([(k,) for k in keys], "k int").repartition(n, "k")
    rows = frame.select("k", F.spark_partition_id().alias("p")).collect()
    landed = {r["k"]: r["p"] for r in rows}
    assert landed == {k: t for t, k in enumerate(keys)}
