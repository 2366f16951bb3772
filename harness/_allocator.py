"""Keep freed activation memory in the process between SGD steps (glibc's ``malloc`` on Linux).

glibc serves a large allocation with its own ``mmap`` and, once the heap's free top grows past
a threshold, hands memory back to the OS. A training step allocates and frees the same large
activations every time, so each step re-maps them and pays a page fault (and the kernel's
zeroing) for every 4 KiB page touched: the stacked networks of the batched trainer, whose
activations are megabytes, took 20,000-35,000 minor page faults per group of 15 ``quick``
candidates after the first. With allocations of up to 32 MiB served from the heap and the heap not trimmed
below 1 GiB, freed activations are reused instead: 0-2,100 faults per group, once the first
groups have touched their memory (measured over the batched ``quick`` oracle's six groups).
The numbers computed are unchanged; only where the memory comes from.

Elsewhere (another C library, macOS, Windows) nothing is changed.
"""

from __future__ import annotations

import ctypes
import functools
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
"""Allocations up to this size come from the heap (glibc's largest allowed threshold on 64-bit)."""
TRIM_THRESHOLD = 2**30
"""Free memory at the top of the heap is kept up to this size."""


@functools.cache
def retain_freed_memory() -> bool:
    """Set glibc's thresholds (once per process) so that freed activations are reused.

    Returns:
        Whether the thresholds were set (``False`` when the C library is not glibc).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library: no lookup on disk
    except AttributeError:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
