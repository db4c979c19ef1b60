"""Process-level CPU tuning for torch work (training and scoring).

glibc returns large freed blocks to the OS and page-faults them back in on the next
batch; for CNN activations that shows up as a large share of system time (seen in a
one-off profile during development, not a benchmark in bench/). Raising the
mmap/trim thresholds through ``mallopt`` at run time has the same effect as the
``MALLOC_*_THRESHOLD_`` environment variables, without needing a re-exec.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

__all__ = ["tune_cpu"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def tune_cpu() -> bool:
    """Apply once per process; returns whether glibc accepted the settings."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        big = 1 << 30
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, big)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, big))
    except (OSError, AttributeError):
        return False
