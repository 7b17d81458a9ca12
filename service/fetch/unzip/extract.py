"""Take the one file we read out of a downloaded archive, safely.

GeoPackages must be extracted (SQLite over ``/vsizip/`` is ~100x slower), and a
shapefile needs its sidecars. Extraction refuses archives that would escape the
target directory (zip-slip) or unpack to far more than they weigh (zip bombs),
and checks every byte against the CRC as it goes. An archive that does not unpack
raises :class:`~service.errors.CorruptArchive`.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from service.errors import CorruptArchive
from service.fetch.diskspace import require_free
from service.fetch.unzip.inflate import BLOCK, Inflater, inflate_into
from service.fetch.unzip.members import LOCAL_HEADER, ArchiveLimits, choose_members

#: Marks a complete extraction; it names the main file.
COMPLETE = ".complete"


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
    if (dest / COMPLETE).exists():
        return dest / (dest / COMPLETE).read_text().strip()
    return None


def finish_extraction(tmp: Path, dest: Path, main: str) -> Path:
    """Mark ``tmp`` complete and move it into place as ``dest``."""
    (tmp / COMPLETE).write_text(main)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest / main


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
        raise CorruptArchive(f"the archive is corrupt ({exc})", file=archive.name,
                             hint="the cached copy was removed; the next run downloads it again"
                             ) from exc
    return PurePosixPath(chosen[0].filename).name


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path,
                 limits: ArchiveLimits, before: int) -> int:
    """Inflate one member with its CRC checked; returns the bytes written."""
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
