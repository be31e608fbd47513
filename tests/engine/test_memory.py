"""sparkmice.engines.memory: freed memory kept for reuse while a chain runs.

Counted by minor page faults (getrusage), not by time: a 5 MiB array freed and allocated
again faults in its pages anew by default (hundreds of faults: the kernel maps several
pages, or a huge page, per fault), and none when malloc kept them. malloc's state depends on
what the process allocated before (glibc raises its mmap threshold as large arrays are
freed), so the counts are taken in a fresh interpreter.
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

size = 5 << 20
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
    assert counts["default"] > 100  # fresh pages from the kernel
    assert counts["kept"] < 10
    assert counts["after"] > 100  # the defaults are back
