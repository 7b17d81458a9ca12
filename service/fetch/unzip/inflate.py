"""One member's bytes, inflated in bounded steps and held to the limits as they come.

Deflate goes through ISA-L (``isal``), which inflates ~1.5x faster than zlib and releases
the GIL: this is the serial part of every load (measured 0.40 s → 0.27 s for the 126 MB
timezone shapefile). Its CRC-32 is 7x zlib's (0.017 s against 0.115 s for the 415 MB
GeoPackage).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

from isal import isal_zlib

from service.errors import BadSource
from service.fetch.unzip.members import (
    RAISE_TOTAL,
    RATIO_EXEMPT_BYTES,
    ArchiveLimits,
    check_declared,
    check_ratio,
)

BLOCK = 1 << 20
#: What ISA-L raises on a broken deflate stream (its stub calls it an instance, hence the cast).
INFLATE_ERROR = cast("type[Exception]", isal_zlib.error)


class Inflater:
    """Both ways of extracting use it: :func:`service.fetch.unzip.extract.extract_member`
    after the download and :class:`service.fetch.unzip.follow.Unzipper` during it.

    Headers can lie, so each call of the inflater returns at most :data:`BLOCK` bytes (a
    bomb's 1 MiB read would come back as 1 GB in one call), and each block is checked
    before anyone writes it: the member's declared size, the archive's extracted-bytes cap
    (``before`` counts the members already written) and the ratio of bytes out to
    compressed bytes consumed. A bomb is stopped within one block, whatever its headers
    claim. A broken deflate stream raises :class:`zipfile.BadZipFile`.
    """

    def __init__(self, name: str, method: int, size: int, packed: int, limits: ArchiveLimits,
                 *, source: str, before: int = 0) -> None:
        _check_method(name, method, source)
        check_declared(name, size, packed, limits, source, before)
        self.name, self.size, self.limits, self.source = name, size, limits, source
        self.before = before
        self.written = 0
        self.crc = 0
        self._fed = 0
        self._inflate = isal_zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None

    def blocks(self, raw: bytes) -> Iterator[bytes]:
        """``raw`` (the member's next compressed bytes) inflated, checked, a block at a time."""
        self._fed += len(raw)
        if self._inflate is None:
            yield self._checked(raw)
            return
        pending = raw
        while True:
            try:
                block = self._inflate.decompress(pending, BLOCK)
            except INFLATE_ERROR as exc:
                raise zipfile.BadZipFile(f"member {self.name!r} does not inflate: {exc}"
                                         ) from exc
            pending = self._inflate.unconsumed_tail
            if block:
                yield self._checked(block)
            if not pending and len(block) < BLOCK:  # a full block may leave output pending
                return

    def matches(self, crc: int) -> bool:
        """Did the member unpack to exactly its declared size and CRC-32?"""
        return self.written == self.size and self.crc == crc

    def _consumed(self) -> int:
        if self._inflate is None:
            return self._fed
        return self._fed - len(self._inflate.unconsumed_tail) - len(self._inflate.unused_data)

    def _checked(self, block: bytes) -> bytes:
        self.written += len(block)
        if self.written > self.size:
            raise BadSource(f"member {self.name!r} unpacks beyond its declared "
                            f"{self.size:,} bytes", file=self.source,
                            hint="the archive is malformed or hostile; report it upstream")
        if self.before + self.written > self.limits.max_total_bytes:
            raise BadSource(f"members unpack to more than {self.limits.max_total_bytes:,} "
                            f"bytes, over the {self.limits.max_total_bytes:,} limit",
                            file=self.source, hint=RAISE_TOTAL)
        if self.written > RATIO_EXEMPT_BYTES:
            check_ratio(self.name, self.written, max(self._consumed(), 1), self.limits,
                        self.source)
        self.crc = isal_zlib.crc32(block, self.crc)
        return block


def inflate_into(target: Path, inflater: Inflater, raw: Iterable[bytes]) -> None:
    """Write what ``inflater`` makes of the compressed blocks ``raw`` to ``target``."""
    with open(target, "wb") as out:
        for compressed in raw:
            for block in inflater.blocks(compressed):
                out.write(block)


def _check_method(name: str, method: int, source: str) -> None:
    if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BadSource(f"member {name!r} uses zip compression method {method}, which "
                        "geoload does not read", file=source,
                        hint="repack the archive with deflate, or report it to the publisher")
