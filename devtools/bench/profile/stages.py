"""Which stage of a load a Python stack is in, for ``--profile``.

A worker's CPU is attributed to the innermost frame of geoload's own code that names a
stage: by the source line's call where one function does several stages (``_repair``
decodes, validates, repairs and encodes), else by module.
"""

from __future__ import annotations

import linecache
from types import FrameType

#: (substring of the source line, stage): the first that matches wins.
BY_LINE = (
    ("sha256", "hash"), ("digest.update", "hash"), ("is_valid(", "validate"),
    ("valid_apart(", "validate"), ("make_valid(", "repair"), ("from_wkb(", "decode WKB"),
    ("to_wkb(", "encode"),
)
#: (substring of the file's path, stage).
BY_FILE = (
    ("service/repair/validity.py", "validate"), ("service/repair/wkb_parts.py", "validate"),
    ("service/repair/", "repair"), ("service/load/copy.py", "encode + COPY send"),
    ("service/read.py", "read"), ("service/load/plan.py", "plan"),
    ("service/fetch/unzip/", "inflate"), ("service/fetch/http.py", "fetch"),
    ("service/fetch/", "fetch"), ("service/publish/", "swap"),
    ("service/load/staging.py", "indexes + ANALYZE (client)"),
    ("service/ledger/", "ledger"), ("service/live.py", "progress (Redis)"),
    ("service/load/", "chunk (other)"), ("service/pipeline/", "pipeline"),
    ("dramatiq/", "broker + middleware"), ("pika/", "broker + middleware"),
)

_cache: dict[tuple[str, int], str | None] = {}


def stage(frame: FrameType | None) -> str:
    """The stage of the innermost frame that names one; ``other`` if none does."""
    while frame is not None:
        code = frame.f_code
        key = (code.co_filename, frame.f_lineno)
        if key not in _cache:
            _cache[key] = _label(*key)
        if (found := _cache[key]) is not None:
            return found
        frame = frame.f_back
    return "other"


def _label(filename: str, lineno: int) -> str | None:
    path = filename.replace("\\", "/")
    if "/service/" not in path and "/site-packages/" not in path:
        return None
    if "/service/" in path:
        line = linecache.getline(filename, lineno)
        for needle, name in BY_LINE:
            if needle in line:
                return name
    return next((name for part, name in BY_FILE if part in path), None)
