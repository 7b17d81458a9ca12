"""Which members of a zip to take, and whether their headers already admit a bomb.

Only the member the catalog names (by pattern) and its shapefile sidecars are taken,
by base name, so no path in the archive can escape the cache (zip-slip is refused
outright). Declared sizes are checked against the limits before a byte is written;
:class:`service.fetch.unzip.inflate.Inflater` holds the same limits on what actually
comes out.
"""

from __future__ import annotations

import fnmatch
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from service.errors import BadSource

#: Sidecar files a shapefile is read with.
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
#: Members smaller than this are exempt from the ratio check (tiny files compress well).
RATIO_EXEMPT_BYTES = 1 << 20
#: A zip local file header (APPNOTE 4.3.7); its last two fields are the name and extra lengths.
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
RAISE_TOTAL = "raise GEOLOAD_MAX_EXTRACT_BYTES if the data really is this big"


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int
    max_ratio: float


def choose_members(zf: zipfile.ZipFile, pattern: str, archive: Path,
                   limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The members to extract, main one first, after the zip-slip and zip-bomb checks."""
    chosen = _choose(_safe_infos(zf, archive), pattern, archive)
    _check_sizes(chosen, limits, archive)
    return chosen


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
                        f"{limits.max_total_bytes:,} limit", file=source, hint=RAISE_TOTAL)
    if size > RATIO_EXEMPT_BYTES and packed:
        check_ratio(name, size, packed, limits, source)


def check_ratio(name: str, size: int, packed: int, limits: ArchiveLimits, source: str) -> None:
    if size / packed > limits.max_ratio:
        raise BadSource(f"member {name!r} is compressed {size / packed:.0f}:1, beyond "
                        f"the {limits.max_ratio:.0f}:1 limit (zip bomb?)", file=source,
                        hint="raise GEOLOAD_MAX_COMPRESSION_RATIO if this is expected")
