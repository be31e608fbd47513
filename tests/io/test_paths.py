"""One resolver for every path (sparkmice.io.paths): the mapping of local, Databricks and
object-store paths to pyarrow filesystems, and one clear line for those that cannot work
here. No network: filesystems are built, never used, for object stores."""

from __future__ import annotations

import pandas as pd
import pytest
from pyarrow import fs as pafs

import sparkmice
from sparkmice.io import paths
from sparkmice.io.paths import PathError, check_apart, resolve, write_atomic


@pytest.mark.parametrize(
    "given, fs_type, inner, delta",
    [
        ("s3a://bucket/a/b/", pafs.S3FileSystem, "bucket/a/b", "s3://bucket/a/b"),
        ("s3://bucket", pafs.S3FileSystem, "bucket", "s3://bucket"),
        ("s3n://bucket/x", pafs.S3FileSystem, "bucket/x", "s3://bucket/x"),
        ("gs://bkt/imputed", pafs.GcsFileSystem, "bkt/imputed", "gs://bkt/imputed"),
        (
            "abfss://data@acct.dfs.core.windows.net/runs/one",
            pafs.AzureFileSystem,
            "data/runs/one",
            "abfss://data@acct.dfs.core.windows.net/runs/one",
        ),
    ],
)
def test_object_store_paths_map_to_pyarrow_filesystems(given, fs_type, inner, delta):
    loc = resolve(given)
    assert isinstance(loc.filesystem, fs_type)
    assert loc.path == inner
    assert loc.uri == given.rstrip("/")  # Spark keeps the user's scheme (s3a for Hadoop)
    assert loc.delta_uri == delta
    assert loc.join("_sparkmice", "config.json").path == f"{inner}/_sparkmice/config.json"


@pytest.mark.parametrize(
    "given",
    ["out", "./out", "file:///tmp/out", "file:/tmp/out"],
    ids=["rel", "dot", "uri", "spark"],
)
def test_local_paths(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loc = resolve(given)
    assert isinstance(loc.filesystem, pafs.LocalFileSystem) and loc.local
    want = "/tmp/out" if given.startswith("file:") else str(tmp_path / "out")
    assert loc.path == want and loc.uri == want and loc.delta_uri == want


@pytest.mark.parametrize(
    "given, message",
    [
        ("s3a:///key", r"s3a:///key: no bucket; write it as s3a://BUCKET/PATH"),
        ("abfss://acct.dfs.core.windows.net/p", r"CONTAINER@ACCOUNT\.dfs\.core\.windows\.net"),
        ("ftp://host/x", r"ftp://host/x: unknown filesystem 'ftp'"),
        ("", "non-empty"),
    ],
)
def test_paths_that_cannot_work_get_one_line(given, message):
    with pytest.raises(PathError, match=message):
        resolve(given)


@pytest.mark.parametrize("given", ["dbfs:/x/imputed", "dbfs:///x", "/dbfs/x", "/Volumes/c/s/v/x"])
def test_databricks_paths_are_refused_where_their_mount_is_missing(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(paths.os.path, "isdir", lambda p: False)  # not on Databricks
    with pytest.raises(PathError, match=r"is a Databricks path, but this machine has no /"):
        resolve(given)
    assert list(tmp_path.iterdir()) == []  # no local folder named 'dbfs:'


def test_dbfs_uri_never_creates_a_local_folder_through_mice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(paths.os.path, "isdir", lambda p: False)  # no /dbfs mount here
    data = pd.DataFrame({"a": [1.0, None, 3.0, 4.0], "b": [1.0, 2.0, None, 4.0]})
    with pytest.raises(PathError, match="dbfs:/x is a Databricks path"):
        sparkmice.mice(data, m=1, maxit=1, output="dbfs:/x")
    assert list(tmp_path.iterdir()) == []


def test_databricks_mounts_are_local_paths_where_they_exist(monkeypatch):
    mounts = {"/dbfs", "/Volumes"}
    monkeypatch.setattr(paths.os.path, "isdir", lambda p: p in mounts)
    dbfs = resolve("dbfs:/mnt/x/")
    assert dbfs.local and dbfs.path == "/dbfs/mnt/x" and dbfs.uri == "dbfs:/mnt/x"
    volume = resolve("/Volumes/main/health/imputed/run1")
    assert volume.local and volume.path == volume.uri == "/Volumes/main/health/imputed/run1"


@pytest.mark.parametrize(
    "output, given, how",
    [
        ("data/in", "data/in", "is"),
        ("data/in/out", "data/in", "lies inside"),
        ("data", "data/in/x.parquet", "contains"),
    ],
)
def test_output_and_input_must_lie_apart(output, given, how, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PathError, match=f"output {output} {how} the input {given}"):
        check_apart(output, [given])
    check_apart("data/out", ["data/in"])  # siblings are fine
    check_apart("data/input2", ["data/in"])  # a shared name prefix is not containment


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path):
    fs = pafs.LocalFileSystem()
    target = tmp_path / "meta" / "config.json"
    write_atomic(fs, str(target), b"old")
    write_atomic(fs, str(target), b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["config.json"]
