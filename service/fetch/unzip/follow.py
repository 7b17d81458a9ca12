"""Inflate a zip's members while it is still downloading.

Download and inflate were the serial start of every load, one after the other
(GADM: 0.5 s download, then 1.3 s inflate and write). Here a second thread
follows the bytes as they arrive: it walks the local file headers, inflates each
candidate member (the pattern or a shapefile sidecar, by base name only, so no
path can escape) with ISA-L, which releases the GIL, and checks its CRC. It
inflates through :class:`service.fetch.unzip.inflate.Inflater`, so the zip-bomb limits
hold on the bytes it writes, not only on what the local headers declare.

Nothing is trusted from the stream alone. Once the download is complete,
:meth:`Unzipper.adopt` compares what was inflated with the archive's central
directory (the same members :func:`~service.fetch.unzip.members.choose_members` would
choose, at the same offsets, with the same sizes and CRCs) and otherwise returns None, so
that the caller extracts the usual way. Any surprise in the stream (data descriptors on
stored members, encryption, an unknown method) simply stops the follower.

The follower inflates into a work directory of its own in the folder it is given, and
removes it whatever happens; one a killed worker left behind is removed by the next
follower in that folder (followers of one folder run one at a time, under the cache's
host lock).
"""

from __future__ import annotations

import fnmatch
import os
import queue
import shutil
import struct
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

from service.errors import CacheError
from service.fetch.diskspace import require_free
from service.fetch.unzip.extract import finish_extraction
from service.fetch.unzip.inflate import Inflater, inflate_into
from service.fetch.unzip.members import (
    LOCAL_HEADER,
    SHAPEFILE_SIDECARS,
    ArchiveLimits,
    choose_members,
)

#: Blocks waiting for the follower; the download waits when it is this far ahead.
QUEUE_BLOCKS = 32
#: The work directories of followers start so: ``.unzip-<pid>-<thread>``.
WORK_PREFIX = ".unzip-"
_ZIP64_EXTRA = 0x0001
_ENCRYPTED, _DATA_DESCRIPTOR = 0x1, 0x8


class _GiveUp(Exception):
    """The stream can't be followed; the archive is extracted after the download."""


@dataclass(frozen=True)
class Inflated:
    offset: int
    size: int
    crc: int


class Unzipper:
    """Feed it the archive's bytes from the first one on; adopt its work afterwards.

    >>> with Unzipper("*.gpkg", folder, limits) as unzipper:
    ...     download(url, archive, sink=unzipper, ...)
    >>> unzipper.adopt(archive, dest)   # None: extract the usual way
    """

    def __init__(self, pattern: str, folder: Path, limits: ArchiveLimits) -> None:
        self.pattern = pattern
        self.folder = folder
        self.work = folder / f"{WORK_PREFIX}{os.getpid()}-{threading.get_ident()}"
        self.limits = limits
        self.members: dict[str, Inflated] = {}
        self.failed: BaseException | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_BLOCKS)
        self._buffer = bytearray()
        self._eof = False
        self._written = 0
        self._expected: int | None = None
        self._received = 0
        self._thread = threading.Thread(target=self._follow, name="unzip", daemon=True)

    def __enter__(self) -> "Unzipper":
        for stale in self.folder.glob(f"{WORK_PREFIX}*"):  # a killed follower's
            shutil.rmtree(stale, ignore_errors=True)
        self.work.mkdir(parents=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        if kind is not None:
            shutil.rmtree(self.work, ignore_errors=True)

    def expect(self, total: int | None) -> None:
        """The download's size: what is still to come needs room too."""
        self._expected = total

    def feed(self, block: bytes) -> None:
        """Hand on the next bytes; a cache too small for a member stops the download."""
        if isinstance(self.failed, CacheError):
            raise self.failed
        if self.failed is None:
            self._received += len(block)
            self._queue.put(block)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def discard(self) -> None:
        """Stop following and remove whatever was not adopted."""
        self.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def adopt(self, archive: Path, dest: Path) -> Path | None:
        """``dest``/member if what was inflated is exactly what the central directory says."""
        self.close()
        try:
            if self.failed is not None or not self.members:
                return None
            try:
                with zipfile.ZipFile(archive) as zf:
                    chosen = choose_members(zf, self.pattern, archive, self.limits)
            except Exception:  # noqa: BLE001 - the usual extraction reports it properly
                return None
            for info in chosen:
                got = self.members.get(PurePosixPath(info.filename).name)
                if got != Inflated(info.header_offset, info.file_size, info.CRC):
                    return None
            keep = {PurePosixPath(i.filename).name for i in chosen}
            for path in self.work.iterdir():
                if path.name not in keep:
                    path.unlink()
            return finish_extraction(self.work, dest, PurePosixPath(chosen[0].filename).name)
        finally:
            self.discard()

    # The follower thread.

    def _follow(self) -> None:
        offset = 0
        try:
            while (header := self._read(LOCAL_HEADER.size)) and header[:4] == b"PK\x03\x04":
                offset = self._member(offset, header)
        except BaseException as exc:  # noqa: BLE001 - any surprise: fall back, never fail
            self.failed = exc
        while not self._eof:  # let the download finish unhindered
            self._eof = self._queue.get() is None

    def _member(self, offset: int, header: bytes) -> int:
        (_, _, flags, method, _, _, crc, packed, size, name_len, extra_len) = \
            LOCAL_HEADER.unpack(header)
        name = self._read(name_len).decode("utf-8", "replace")
        extra = self._read(extra_len)
        if flags & _ENCRYPTED or method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _GiveUp(f"member {name!r}: encrypted or method {method}")
        if packed == 0xFFFFFFFF or size == 0xFFFFFFFF:
            size, packed = _zip64_sizes(extra, size, packed)
        if flags & _DATA_DESCRIPTOR:
            raise _GiveUp(f"member {name!r} has its sizes after its data")
        base = PurePosixPath(name.replace("\\", "/")).name
        wanted = base and not name.endswith("/") and (
            fnmatch.fnmatch(base, self.pattern)
            or PurePosixPath(base).suffix.lower() in SHAPEFILE_SIDECARS)
        if wanted:
            self._inflate(base, method, packed, size, crc, offset)
        else:
            self._skip(packed)
        return offset + LOCAL_HEADER.size + name_len + extra_len + packed

    def _inflate(self, base: str, method: int, packed: int, size: int, crc: int,
                 offset: int) -> None:
        """Inflate under the same limits as :func:`~service.fetch.unzip.extract_member`; a member
        that breaks one stops the follower (the usual path then says why). A member the
        cache has no room for, beside the download's remaining bytes, stops the download:
        waiting for the central directory would only fill the disk."""
        inflater = Inflater(base, method, size, packed, self.limits, source=base,
                            before=self._written)
        to_come = max((self._expected or 0) - self._received, 0)
        beside = f" beside the {to_come:,} bytes still to download" if to_come else ""
        require_free(self.work.parent, size + to_come, f"unpacking {base}{beside}")
        inflate_into(self.work / base, inflater, self._blocks(packed))
        self._written += inflater.written
        if inflater.matches(crc):
            self.members[base] = Inflated(offset, size, crc)

    def _skip(self, packed: int) -> None:
        for _ in self._blocks(packed):
            pass

    def _blocks(self, count: int) -> Iterator[bytes]:
        """The next ``count`` bytes of the stream, as they arrive."""
        while count > 0:
            if not self._buffer:
                if self._eof:
                    raise _GiveUp("the stream ended inside a member")
                self._pull()
                continue
            taken = bytes(self._buffer[:count])
            del self._buffer[:len(taken)]
            count -= len(taken)
            yield taken

    def _read(self, count: int) -> bytes:
        """Exactly ``count`` bytes, or fewer at the end of the stream."""
        while len(self._buffer) < count and not self._eof:
            self._pull()
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken

    def _pull(self) -> None:
        block = self._queue.get()
        if block is None:
            self._eof = True
        else:
            self._buffer += block


def _zip64_sizes(extra: bytes, size: int, packed: int) -> tuple[int, int]:
    """Sizes from the Zip64 extra field (APPNOTE 4.5.3): original, then compressed."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        if kind == _ZIP64_EXTRA:
            fields = iter(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            if size == 0xFFFFFFFF:
                size = next(fields)
            if packed == 0xFFFFFFFF:
                packed = next(fields)
            return size, packed
        at += 4 + length
    raise _GiveUp("Zip64 sizes missing")
