"""This host's cache of source files: one folder per dataset, one writer at a time.

``GEOLOAD_CACHE_DIR/<dataset>/`` holds the archive as downloaded, its sidecar
``<archive>.json`` (the :class:`~service.fetch.http.Validators` upstream sent, and the
sha256 of the bytes) and the extracted versions ``extracted-<sha256 prefix>/``: the
current one and the one before, which a run still loading on this host may be reading.

An exclusive ``flock`` on the folder (:func:`host_lock`) means two workers on one host
never download or extract the same file at once. A pinned version that is already
complete here is found without it (:func:`pinned_copy`): every chunk of a run asks.
Caches are never shared between hosts.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from service.errors import CacheError
from service.fetch.http import Validators
from service.fetch.unzip import extracted

#: Extracted versions kept per dataset: the current one and the one before, which
#: a run that is still loading on this host may be reading.
KEEP_EXTRACTED = 2
#: Extracted versions are named for the first characters of their archive's sha256.
EXTRACTED_PREFIX = "extracted-"


def archive_path(cache_dir: Path, dataset: str, url: str) -> Path:
    """Where the file of ``url`` is kept for ``dataset``: named as upstream names it."""
    return cache_dir / dataset / PurePosixPath(urlsplit(url).path).name


def extracted_dir(archive: Path, sha256: str) -> Path:
    """Where the version of ``archive`` with this sha256 is (or will be) extracted."""
    return archive.parent / f"{EXTRACTED_PREFIX}{sha256[:16]}"


@dataclass(frozen=True)
class Here:
    """A version complete on this host: its validators and the file to read."""

    validators: Validators
    path: Path


def pinned_copy(archive: Path, pinned: str, *, unpacked: bool) -> Here | None:
    """The pinned version, if the cache holds it complete (and ``unpacked``, extracted).

    Asked without the host lock: the sidecar is replaced atomically and names only a
    complete file, and an extraction is marked complete only once it is in place. What
    this can't see (a version downloaded or extracted meanwhile) the locked path handles.
    """
    have = cached(archive)
    if have is None or have.sha256 != pinned:
        return None
    if not unpacked:
        return Here(have, archive)
    main = extracted(extracted_dir(archive, pinned))
    return Here(have, main) if main is not None else None


@contextmanager
def host_lock(folder: Path) -> Iterator[None]:
    """This host's exclusive hold on ``folder``: downloads, extractions, pruning."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sidecar(archive: Path) -> Path:
    return archive.with_name(archive.name + ".json")


def cached(archive: Path) -> Validators | None:
    """Validators of a complete file on disk, or None when it is missing or torn."""
    try:
        meta = Validators(**json.loads(_sidecar(archive).read_text()))
        if archive.stat().st_size == meta.size:
            return meta
    except (OSError, ValueError, TypeError):
        pass
    return None


def install(part: Path, archive: Path, validators: Validators) -> None:
    """Rename a complete download into place, its sidecar in step with it.

    The old sidecar goes first, the new one is written after the rename: a crash at any
    point leaves the old pair, or a file that claims nothing (downloaded again), never a
    new file under the old file's sha256.
    """
    _sidecar(archive).unlink(missing_ok=True)
    os.replace(part, archive)
    _save(validators, _sidecar(archive))


def _save(validators: Validators, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(validators)))
    os.replace(tmp, path)


def discard(archive: Path) -> None:
    """Forget a bad download so that the next attempt fetches it anew."""
    archive.unlink(missing_ok=True)
    _sidecar(archive).unlink(missing_ok=True)


def prune(folder: Path, keep: Path) -> None:
    """Remove extracted versions beyond :data:`KEEP_EXTRACTED`, newest (and ``keep``) kept."""
    versions = sorted(folder.glob(f"{EXTRACTED_PREFIX}*"), key=lambda p: p.stat().st_mtime,
                      reverse=True)
    old = [p for p in versions if p != keep][KEEP_EXTRACTED - 1:]
    for stale in old:
        shutil.rmtree(stale, ignore_errors=True)


def cache_error(exc: OSError, folder: Path, dataset: str) -> CacheError:
    """What a failed write to the cache means for a person."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    full = " (disk full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return CacheError(f"can't write the cache at {folder}: {reason}{full}", dataset=dataset,
                      hint="free disk space or point GEOLOAD_CACHE_DIR at a larger, writable disk")

