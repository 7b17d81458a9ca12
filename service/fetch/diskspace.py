"""Is there room in the cache for what comes next? Asked before writing, not after.

A download or an extraction that fills the disk fails half-way, after minutes,
and leaves a full disk for everything else on the host. The sizes are known
early: the response headers give the download's, the zip's headers give each
member's. So the cache's filesystem is asked first, and a shortfall fails with
the numbers a person needs to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path

from service.errors import CacheError


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on ``directory``'s filesystem."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def require_free(directory: Path, needed: int, what: str) -> None:
    """Raise :class:`CacheError` unless ``needed`` bytes are free for ``what``."""
    free = free_bytes(directory)
    if needed > free:
        raise CacheError(f"not enough free space in {directory}: {what} needs {needed:,} bytes, "
                         f"only {free:,} are free",
                         hint=f"free {needed - free:,} bytes or more in {directory}, or point "
                              "GEOLOAD_CACHE_DIR at a larger disk; retried automatically")
