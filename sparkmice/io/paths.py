"""Where a path lives: the one function that turns a local path or URI into a pyarrow
filesystem and a path inside it, for the whole project (driver and Spark tasks alike).

    local or file:///x        -> the local filesystem
    /Volumes/..., /dbfs/...   -> local too (Databricks' FUSE mounts); refused where the mount
                                 is missing, so nothing is written into a look-alike folder
    dbfs:/x                   -> /dbfs/x (the FUSE mount of DBFS); refused without it
    s3://, s3a://, s3n://     -> pyarrow's S3 (same bucket and key); credentials and region
                                 from the AWS environment
    gs://, gcs://             -> pyarrow's GCS
    abfss://c@acct.dfs.core.windows.net/p, abfs://  -> pyarrow's Azure (container c, account)
    hdfs://, viewfs://        -> pyarrow's HDFS (needs libhdfs)
Spark and delta-rs are given `Location.uri` (the user's own spelling, absolute if local);
everything else goes through `Location.filesystem` and `Location.path`.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

from pyarrow import fs as pafs

DATABRICKS_MOUNTS = ("/Volumes", "/dbfs")
_S3 = ("s3", "s3a", "s3n")
_GCS = ("gs", "gcs")
_AZURE = ("abfss", "abfs")
_HDFS = ("hdfs", "viewfs")


class PathError(ValueError):
    """A path sparkmice cannot read or write here; the message names the path and the fix."""


@dataclass(frozen=True)
class Location:
    """A resolved path: `uri` for Spark, `filesystem` and `path` for pyarrow."""

    uri: str
    filesystem: pafs.FileSystem
    path: str

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def delta_uri(self) -> str:
        """The path as delta-rs takes it: local paths as such, object stores by URI."""
        if self.local:
            return self.path
        scheme, rest = self.uri.split("://", 1)
        return f"s3://{rest}" if scheme in _S3 else self.uri

    def join(self, *parts: str) -> Location:
        """The location of `parts` below this one."""
        rel = "/".join(p.strip("/") for p in parts if p)
        if not rel:
            return self
        return Location(
            f"{self.uri.rstrip('/')}/{rel}", self.filesystem, f"{self.path.rstrip('/')}/{rel}"
        )


def resolve(path: str) -> Location:
    """The filesystem and path of `path` (see the module's table), or one clear PathError."""
    if not isinstance(path, str) or not path.strip():
        raise PathError(f"path must be a non-empty string; got {path!r}.")
    if path.startswith("file:") and not path.startswith("file://"):  # Spark's file:/x
        return _local(path[len("file:") :])
    if path.startswith("dbfs:") and not path.startswith("dbfs://"):
        return _databricks_mount("/dbfs/" + path[len("dbfs:") :].lstrip("/"), uri=path)
    if "://" not in path:
        return _local(path)
    parsed = urlparse(path)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        return _local(parsed.path or "/")
    if scheme == "dbfs":
        return _databricks_mount("/dbfs/" + (parsed.netloc + parsed.path).lstrip("/"), uri=path)
    if scheme in _S3 + _GCS:
        bucket_path = _bucket_path(path, parsed)
        fs = pafs.S3FileSystem() if scheme in _S3 else pafs.GcsFileSystem()
        return Location(path.rstrip("/"), fs, bucket_path)
    if scheme in _AZURE:
        return _azure(path, parsed)
    if scheme in _HDFS:
        try:
            fs, inner = pafs.FileSystem.from_uri(path)
        except Exception as err:  # libhdfs missing, or no namenode
            raise PathError(
                f"{path}: pyarrow cannot open HDFS here ({err}); set ARROW_LIBHDFS_DIR "
                "and HADOOP_HOME, or write to a local or object-store path."
            ) from None
        return Location(path.rstrip("/"), fs, inner)
    raise PathError(
        f"{path}: unknown filesystem {scheme!r}; use a local path, file://, dbfs:/, "
        "s3:// (s3a://), gs://, abfss:// or hdfs://."
    )


def filesystem_path(path: str) -> tuple[pafs.FileSystem, str]:
    """`resolve(path)` as the (filesystem, path) pair pyarrow's calls take."""
    location = resolve(path)
    return location.filesystem, location.path


def _local(path: str) -> Location:
    absolute = os.path.abspath(path)
    for mount in DATABRICKS_MOUNTS:
        if absolute == mount or absolute.startswith(mount + "/"):
            return _databricks_mount(absolute, uri=absolute)
    return Location(absolute, pafs.LocalFileSystem(), absolute)


def _databricks_mount(local_path: str, uri: str) -> Location:
    """A path under /Volumes or /dbfs: local where Databricks mounts it, refused elsewhere."""
    local_path = posixpath.normpath(local_path)
    mount = "/" + local_path.strip("/").split("/", 1)[0]
    if not os.path.isdir(mount):
        raise PathError(
            f"{uri} is a Databricks path, but this machine has no {mount} mount; run on "
            "Databricks, or give a local or object-store path (s3://, abfss://, gs://)."
        )
    return Location(uri.rstrip("/"), pafs.LocalFileSystem(), local_path)


def _bucket_path(path: str, parsed) -> str:
    if not parsed.netloc:
        raise PathError(f"{path}: no bucket; write it as {parsed.scheme}://BUCKET/PATH.")
    return f"{parsed.netloc}{parsed.path}".rstrip("/")


def _azure(path: str, parsed) -> Location:
    container, _, host = parsed.netloc.partition("@")
    account = host.split(".", 1)[0]
    if not container or not account:
        raise PathError(
            f"{path}: write an Azure path as "
            f"{parsed.scheme}://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH."
        )
    if not hasattr(pafs, "AzureFileSystem"):
        raise PathError(
            f"{path}: this pyarrow has no Azure filesystem; install pyarrow >= 16, or give "
            "the path as /Volumes/... or dbfs:/... on Databricks."
        )
    fs = pafs.AzureFileSystem(account_name=account)
    return Location(path.rstrip("/"), fs, f"{container}{parsed.path}".rstrip("/"))


def renames_atomically(fs: pafs.FileSystem) -> bool:
    """Whether a rename replaces a file in one step (local disks, HDFS); on object stores a
    rename is a copy, and a single upload is the atomic write instead."""
    return isinstance(fs, (pafs.LocalFileSystem, pafs.HadoopFileSystem))


def write_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one: a
    uniquely named temporary file renamed over it, or one upload (object stores)."""
    fs.create_dir(posixpath.dirname(path), recursive=True)
    if not renames_atomically(fs):
        with fs.open_output_stream(path) as f:
            f.write(data)
        return
    tmp = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, path)


def check_apart(output: str, inputs: list[str]) -> None:
    """Refuse an output that is, lies inside or contains an input path (a rerun would read
    its own output, or the output would overwrite the input). Inputs that do not resolve
    (e.g. a catalog table's storage) are not compared."""
    out = resolve(output)
    for given in inputs:
        try:
            inp = resolve(given)
        except PathError:
            continue
        if is_within(out, inp) or is_within(inp, out):
            how = (
                "is"
                if out.path.rstrip("/") == inp.path.rstrip("/")
                else ("lies inside" if is_within(out, inp) else "contains")
            )
            raise PathError(
                f"output {output} {how} the input {given}; write the imputations to a "
                "folder apart from the input."
            )


def is_within(inner: Location, outer: Location) -> bool:
    """Whether `inner` is `outer` or lies below it (same filesystem kind)."""
    if type(inner.filesystem) is not type(outer.filesystem):
        return False
    a, b = inner.path.rstrip("/"), outer.path.rstrip("/")
    return a == b or a.startswith(b + "/")
