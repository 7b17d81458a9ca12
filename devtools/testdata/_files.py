"""File helpers: byte-reproducible zips, hashing, and pinned GDAL timestamps."""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pyogrio

_M = TypeVar("_M", bound="JsonManifest")


class JsonManifest:
    """Round-trips a manifest dataclass through JSON: ``path`` as str, tuples as lists."""

    _tuples: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)  # type: ignore[call-overload]
        d["path"] = str(d["path"])
        d.update({name: list(d[name]) for name in self._tuples})
        return d

    @classmethod
    def from_json(cls: type[_M], d: dict[str, Any]) -> _M:
        """Inverse of :meth:`to_json`."""
        return cls(**{**d, "path": Path(d["path"]),  # type: ignore[call-arg]
                      **{name: tuple(d[name]) for name in cls._tuples}})


ZIP_DATE = (2022, 7, 16, 0, 0, 0)  # fixed member dates keep the zip's sha256 reproducible
_CHUNK = 1 << 20


def write_zip(out_zip: Path, members: Sequence[tuple[Path, str]]) -> None:
    """Deflate ``members`` (path, name in zip) into ``out_zip`` atomically, streaming 1 MiB."""
    tmp = out_zip.with_name(out_zip.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for path, arcname in members:
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            size = path.stat().st_size
            with path.open("rb") as src, zf.open(info, "w", force_zip64=size > 2**31) as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
    os.replace(tmp, out_zip)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def pinned_gdal_date() -> Iterator[None]:
    """Make GDAL stamp a fixed date (GPKG ``last_change``) so output bytes are reproducible."""
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2022-07-16T00:00:00.000Z"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})


def pin_dbf_date(dbf: Path) -> None:
    """Overwrite the last-update date in a .dbf header (bytes 1..3: YY-1900, MM, DD)."""
    with dbf.open("r+b") as f:
        f.seek(1)
        f.write(bytes([ZIP_DATE[0] - 1900, ZIP_DATE[1], ZIP_DATE[2]]))
