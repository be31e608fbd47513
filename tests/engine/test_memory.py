"""sparkmice.engines.memory: freed memory kept for reuse while a chain runs.

Counted by minor page faults (getrusage), not by time: a 64 MiB array freed and allocated
again faults in its pages anew by default (measured 544 faults: the kernel maps several
pages per fault; at least 32 where it maps 2 MiB huge pages), and none when malloc kept
them. 64 MiB is above any mmap threshold glibc adapts to (32 MiB), and the counts are taken
in a fresh interpreter: malloc's state depends on what the process freed before.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

COUNT = """
import json, resource
import numpy as np
from sparkmice.engines import memory

def faults(n_bytes):
    first = np.ones(n_bytes // 8)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = np.ones(n_bytes // 8)
    del second
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

size = 64 << 20
default = faults(size)
with memory.freed_memory_kept():
    kept = faults(size)
after = faults(size)
print(json.dumps({"glibc": memory._mallopt() is not None, "default": default, "kept": kept,
                  "after": after}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_pages_are_reused_inside_and_returned_after():
    out = subprocess.run([sys.executable, "-c", COUNT], capture_output=True, text=True, check=True)
    counts = json.loads(out.stdout)
    assert counts["glibc"]
    assert counts["default"] >= 32  # fresh pages from the kernel
    assert counts["kept"] < 4
    assert counts["after"] >= 32  # the defaults are back
