"""Freed memory kept for reuse while a chain runs (glibc's malloc; elsewhere nothing).

Every step of a sweep allocates its design, moments and temporaries afresh, megabytes each.
glibc's malloc serves such arrays with fresh pages from the kernel (mmap) and hands them
back when they are freed, so each step pays the kernel's page faults again, and on a
virtual machine these are slow: a warm sweep of the 10^6-row narrow workload took 1.9-2.4 s
that way and 1.3-1.5 s with the pages kept (2-core AMD VM, one core). While a chain runs,
malloc therefore takes large arrays from its heap (no mmap) and keeps freed memory there
(a high trim threshold); afterwards glibc's default settings are set again, so the process
returns memory to the kernel as before. The process's resident memory during the run stays
at its peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from collections.abc import Callable, Iterator

M_TRIM_THRESHOLD = -1  # mallopt's parameters (malloc.h)
M_MMAP_MAX = -4
KEPT_BYTES = 1 << 30  # free memory at the heap's top given back only beyond this
DEFAULT_TRIM_THRESHOLD = 128 * 1024  # glibc's defaults, restored after the run
DEFAULT_MMAP_MAX = 65536


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's mallopt, or None where the C library has none (macOS, musl's)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[None]:
    """Within the block, malloc reuses freed memory instead of returning it to the kernel."""
    mallopt = _mallopt()
    if mallopt is None:
        yield
        return
    mallopt(M_MMAP_MAX, 0)
    mallopt(M_TRIM_THRESHOLD, KEPT_BYTES)
    try:
        yield
    finally:
        mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
