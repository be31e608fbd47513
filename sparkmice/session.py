"""The Spark session sparkmice uses: the active one if any (a notebook's, a spark-submit
job's, a Spark Connect client's), else an embedded local Spark from the pip-installed pyspark."""

from __future__ import annotations

import os
import sys


def get_spark(master: str | None = None, remote: str | None = None):
    """Active session, or a new one: Spark Connect if `remote` or $SPARK_REMOTE is set;
    under spark-submit, the submitted application's; else local Spark on `master` (default
    $SPARK_MASTER or local[*])."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None and remote is None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    remote = remote or os.environ.get("SPARK_REMOTE")
    builder = SparkSession.builder.appName("sparkmice")
    if remote:
        return builder.remote(remote).getOrCreate()
    if master is None and submitted():  # spark-submit's --master, --name and --conf hold
        return SparkSession.builder.getOrCreate()
    return (
        builder.master(master or os.environ.get("SPARK_MASTER", "local[*]"))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.memory", os.environ.get("SPARKMICE_DRIVER_MEMORY", "4g"))
        .config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
        .getOrCreate()
    )


def submitted() -> bool:
    """True in a driver that spark-submit (or the pyspark shell) started: its JVM is already
    running, with the master and configuration given on the command line."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def is_connect(spark) -> bool:
    """True for a Spark Connect session (no SparkContext, no RDDs)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def slots(spark) -> int:
    """Task slots of the cluster, without touching the SparkContext over Connect.

    Read from `spark.sparkmice.slots` if set, else from the master URL (local[N],
    local-cluster[E,C,M]) or the executor settings; 2 if none of these tells."""
    conf = spark.conf
    explicit = conf.get("spark.sparkmice.slots", None)
    if explicit:
        return int(explicit)
    if not is_connect(spark):
        return int(spark.sparkContext.defaultParallelism)
    master = conf.get("spark.master", "") or ""
    if master.startswith("local-cluster["):
        e, c, _ = master[len("local-cluster[") : -1].split(",")
        return int(e) * int(c)
    if master.startswith("local"):
        inner = master[6:-1] if "[" in master else "1"
        n = inner.split(",")[0]
        return os.cpu_count() or 2 if n == "*" else int(n)
    instances = conf.get("spark.executor.instances", None)
    cores = conf.get("spark.executor.cores", None)
    if instances and cores:
        return int(instances) * int(cores)
    return 2
