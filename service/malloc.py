"""Make glibc hand large freed buffers back to the OS at once.

glibc raises its mmap threshold each time a large mmapped block is freed (up to
32 MB), so after the first big polygon, GEOS's noding index, GDAL's read buffers and
COPY pieces come from the heap, where fragmentation keeps them resident and every
later chunk stacks on top. Pinning the threshold at 1 MiB keeps each large buffer
mmapped and unmapped on free: a worker's peak RSS on the benchmark timezone file
410-418 MB -> 343 MB (``python -m service.bench --runs 3 --workers 1 --memory
timezone``), for a few page faults more.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: ``mallopt`` parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks from this size up are mmapped, and unmapped when freed.
MMAP_THRESHOLD_BYTES = 1 << 20


def return_large_buffers() -> bool:
    """Pin glibc's mmap and trim thresholds; False where libc is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(M_TRIM_THRESHOLD, MMAP_THRESHOLD_BYTES))
