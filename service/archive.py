"""Take the one file we read out of a downloaded archive, safely.

GeoPackages must be extracted (SQLite over ``/vsizip/`` is ~100x slower), and a
shapefile needs its sidecars. Extraction refuses archives that would escape the
target directory (zip-slip) or unpack to far more than they weigh (zip bombs),
and checks every byte against the CRC as it goes.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import struct
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from isal import isal_zlib

from service.diskspace import require_free
from service.errors import BadSource

#: Sidecar files a shapefile is read with.
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
#: Members smaller than this are exempt from the ratio check (tiny files compress well).
RATIO_EXEMPT_BYTES = 1 << 20
BLOCK = 1 << 20
#: A zip local file header (APPNOTE 4.3.7); its last two fields are the name and extra lengths.
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
#: What ISA-L raises on a broken deflate stream (its stub calls it an instance, hence the cast).
INFLATE_ERROR = cast("type[Exception]", isal_zlib.error)
_RAISE_TOTAL = "raise GEOLOAD_MAX_EXTRACT_BYTES if the data really is this big"


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int
    max_ratio: float


def extract_member(archive: Path, pattern: str, dest: Path, limits: ArchiveLimits) -> Path:
    """Extract the member matching ``pattern`` (and its sidecars) into ``dest``.

    Extraction goes to a temporary directory renamed into place, so ``dest``
    either holds a complete, CRC-checked copy or does not exist.
    """
    if (done := extracted(dest)) is not None:
        return done
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        main = _extract(archive, pattern, tmp, limits)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a refused bomb leaves no bytes behind
        raise
    return finish_extraction(tmp, dest, main)


def extracted(dest: Path) -> Path | None:
    """The main file of a complete extraction in ``dest``, if there is one."""
    if (dest / ".complete").exists():
        return dest / (dest / ".complete").read_text().strip()
    return None


def finish_extraction(tmp: Path, dest: Path, main: str) -> Path:
    """Mark ``tmp`` complete and move it into place as ``dest``."""
    (tmp / ".complete").write_text(main)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest / main


def choose_members(zf: zipfile.ZipFile, pattern: str, archive: Path,
                   limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The members to extract, main one first, after the zip-slip and zip-bomb checks."""
    chosen = _choose(_safe_infos(zf, archive), pattern, archive)
    _check_sizes(chosen, limits, archive)
    return chosen


def _extract(archive: Path, pattern: str, tmp: Path, limits: ArchiveLimits) -> str:
    """Check the archive, unpack the chosen members into ``tmp``; returns the main one's name."""
    try:
        with zipfile.ZipFile(archive) as zf:
            chosen = choose_members(zf, pattern, archive, limits)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            require_free(tmp.parent, sum(i.file_size for i in chosen),
                         f"unpacking {', '.join(PurePosixPath(i.filename).name for i in chosen)}")
            tmp.mkdir()
            written = 0
            for info in chosen:
                written += _copy_member(zf, info, tmp / PurePosixPath(info.filename).name,
                                        archive, limits, written)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise BadSource(f"the archive is corrupt ({exc})", file=archive.name,
                        hint="the cached copy was removed; the next run downloads it again"
                        ) from exc
    return PurePosixPath(chosen[0].filename).name


def _safe_infos(zf: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    for info in infos:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise BadSource(f"member {info.filename!r} would be written outside the cache "
                            "(zip-slip)", file=archive.name,
                            hint="this archive is unsafe; report it to the publisher")
    return infos


def _choose(infos: list[zipfile.ZipInfo], pattern: str, archive: Path) -> list[zipfile.ZipInfo]:
    """The member matching ``pattern`` first, then its shapefile sidecars."""
    files = [i for i in infos if not i.is_dir()]
    matches = [i for i in files if fnmatch.fnmatch(PurePosixPath(i.filename).name, pattern)]
    if len(matches) != 1:
        listing = ", ".join(i.filename for i in files[:12]) or "nothing"
        problem = "no member matches" if not matches else f"{len(matches)} members match"
        raise BadSource(f"{problem} {pattern!r}; the archive holds {listing}", file=archive.name,
                        hint="upstream changed its packaging; update the catalog's member pattern")
    main = matches[0]
    stem = PurePosixPath(main.filename).with_suffix("")
    sidecars = [i for i in files
                if PurePosixPath(i.filename).with_suffix("") == stem
                and PurePosixPath(i.filename).suffix.lower() in SHAPEFILE_SIDECARS]
    return [main, *sidecars]


def _check_sizes(chosen: list[zipfile.ZipInfo], limits: ArchiveLimits, archive: Path) -> None:
    """Every chosen member's declared sizes, before any of them is written."""
    before = 0
    for info in chosen:
        check_declared(info.filename, info.file_size, info.compress_size, limits,
                       archive.name, before)
        before += info.file_size


def check_declared(name: str, size: int, packed: int, limits: ArchiveLimits, source: str,
                   before: int = 0) -> None:
    """Refuse a member whose headers already admit a bomb; ``before`` is what the members
    ahead of it declare."""
    if before + size > limits.max_total_bytes:
        raise BadSource(f"members declare {before + size:,} bytes unpacked, over the "
                        f"{limits.max_total_bytes:,} limit", file=source, hint=_RAISE_TOTAL)
    if size > RATIO_EXEMPT_BYTES and packed:
        _check_ratio(name, size, packed, limits, source)


def _check_ratio(name: str, size: int, packed: int, limits: ArchiveLimits, source: str) -> None:
    if size / packed > limits.max_ratio:
        raise BadSource(f"member {name!r} is compressed {size / packed:.0f}:1, beyond "
                        f"the {limits.max_ratio:.0f}:1 limit (zip bomb?)", file=source,
                        hint="raise GEOLOAD_MAX_COMPRESSION_RATIO if this is expected")


class Inflater:
    """One member's bytes, inflated in bounded steps and held to the limits as they come.

    Both ways of extracting use it: :func:`extract_member` after the download and
    :class:`service.unzip_stream.Unzipper` during it. Headers can lie, so each call of
    the inflater returns at most :data:`BLOCK` bytes (a bomb's 1 MiB read would come
    back as 1 GB in one call), and each block is checked before anyone writes it: the
    member's declared size, the archive's extracted-bytes cap (``before`` counts the
    members already written) and the ratio of bytes out to compressed bytes consumed.
    A bomb is stopped within one block, whatever its headers claim.
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
                            file=self.source, hint=_RAISE_TOTAL)
        if self.written > RATIO_EXEMPT_BYTES:
            _check_ratio(self.name, self.written, max(self._consumed(), 1), self.limits,
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


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path,
                 limits: ArchiveLimits, before: int) -> int:
    """Inflate one member with its CRC checked; returns the bytes written.

    Deflate goes through ISA-L (``isal``), which inflates ~1.5x faster than zlib: this
    is the serial part of every load (measured 0.40 s → 0.27 s for the 126 MB timezone
    shapefile). Its CRC-32 is 7x zlib's (0.017 s against 0.115 s for the 415 MB GeoPackage).
    """
    inflater = Inflater(info.filename, info.compress_type, info.file_size, info.compress_size,
                        limits, source=archive.name, before=before)
    with _raw_member(zf, info) as src:
        inflate_into(target, inflater, _read(src, info.compress_size))
    if not inflater.matches(info.CRC):
        raise zipfile.BadZipFile(f"member {info.filename!r} fails its CRC or size check")
    return inflater.written


def _read(src: BinaryIO, count: int) -> Iterator[bytes]:
    """The next ``count`` bytes of ``src`` (fewer if it ends), :data:`BLOCK` at a time."""
    while count > 0 and (raw := src.read(min(BLOCK, count))):
        count -= len(raw)
        yield raw


@contextmanager
def _raw_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[BinaryIO]:
    """The member's compressed bytes, positioned after its local header."""
    assert zf.filename is not None
    with open(zf.filename, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(LOCAL_HEADER.size)
        if len(header) != LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for member {info.filename!r}")
        name_length, extra_length = LOCAL_HEADER.unpack(header)[-2:]
        handle.seek(name_length + extra_length, os.SEEK_CUR)
        yield handle
