"""Make a worker hand freed memory back to the OS: large buffers at once, the rest after
each message (:func:`give_back_freed`).

glibc raises its mmap threshold each time a large mmapped block is freed (up to
32 MB), so after the first big polygon, GEOS's noding index, GDAL's read buffers and
COPY pieces come from the heap, where fragmentation keeps them resident and every
later chunk stacks on top. Pinning the threshold at 1 MiB keeps each large buffer
mmapped and unmapped on free: a worker's peak RSS on the benchmark timezone file
410-418 MB -> 343 MB (``python -m devtools.bench --runs 3 --workers 1 --memory
timezone``), for a few page faults more.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any

import pyarrow as pa

#: ``mallopt`` parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks from this size up are mmapped, and unmapped when freed.
MMAP_THRESHOLD_BYTES = 1 << 20


def return_large_buffers() -> bool:
    """Pin glibc's mmap and trim thresholds; False where libc is not glibc."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(M_TRIM_THRESHOLD, MMAP_THRESHOLD_BYTES))


def give_back_freed() -> None:
    """Hand what the last message freed back to the OS, so the next one starts low.

    Small blocks freed in the middle of glibc's heaps (the pinned thresholds only return
    its top) and Arrow's mimalloc pages stay resident otherwise, and the next chunk stacks
    on them: between timezone chunks a worker sat 70-90 MB above its idle RSS.
    """
    pa.default_memory_pool().release_unused()
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        trim(0)


@cache
def _glibc(function: str) -> Any:
    """``function`` from glibc, or None where the C library isn't glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):
        return None
