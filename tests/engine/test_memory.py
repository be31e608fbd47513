"""sparkmice.engines.memory: freed memory kept for reuse while a chain runs.

Counted by the process's minor page faults (getrusage), not by time: a 5 MiB array freed
and allocated again faults in its pages anew by default (1,280 pages of 4 KiB; hundreds of
faults with the kernel's fault-around or huge pages), and none when malloc kept them.
"""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from sparkmice.engines import memory

SIZE = 5 << 20


def _faults_of_a_second_array(n_bytes: int) -> int:
    """Minor page faults of allocating and filling an array the size of one just freed."""
    first = np.ones(n_bytes // 8)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = np.ones(n_bytes // 8)
    del second
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_pages_are_reused_inside_and_returned_after():
    assert memory._mallopt() is not None
    assert _faults_of_a_second_array(SIZE) > 100  # the default: fresh pages from the kernel
    with memory.freed_memory_kept():
        assert _faults_of_a_second_array(SIZE) < 10
    assert _faults_of_a_second_array(SIZE) > 100  # the defaults are back
