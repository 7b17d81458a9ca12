"""Make a dataset's source file readable on this host, once per host.

Each host keeps its own cache (``GEOLOAD_CACHE_DIR/<dataset>/``). An exclusive
``flock`` per dataset means two workers on one host never download or extract
the same file at once; the second one waits and then finds it ready. A run pins
the sha256 it started with, so a worker on another host loads the very same
bytes, or fails clearly if upstream changed in between.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from service.archive import ArchiveLimits, extract_member, extracted
from service.catalog import Dataset
from service.download import Limits, Progress, Validators, cached, download, meta_path
from service.errors import BadSource, CacheError, GeoloadError
from service.settings import Settings
from service.unzip_stream import Unzipper, stream_target
from service.urls import check_scheme, mask, mirrored

#: Extracted versions kept per dataset: the current one and the one before, which
#: a run that is still loading on this host may be reading.
KEEP_EXTRACTED = 2


@dataclass(frozen=True)
class LocalCopy:
    """A verified source on this host: the archive, and the file to read in it."""

    dataset: str
    url: str
    archive: Path
    path: Path
    validators: Validators
    changed: bool
    resumed_from: int = 0


def source_url(dataset: Dataset, settings: Settings) -> str:
    """The URL actually fetched: upstream's, or the mirror's stand-in for it."""
    url = mirrored(dataset.url(settings), settings.mirror)
    check_scheme(url, settings.mirror)
    return url


def fetch(dataset: Dataset, settings: Settings, *, pinned_sha256: str | None = None,
          progress: Progress | None = None) -> LocalCopy:
    """Download (if needed), verify and extract ``dataset``'s source on this host."""
    url = source_url(dataset, settings)
    folder = settings.cache_dir / dataset.name
    archive = folder / PurePosixPath(urlsplit(url).path).name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _host_lock(folder / ".lock"):
            return _fetch_locked(dataset, settings, url, archive, pinned_sha256, progress)
    except GeoloadError as exc:
        exc.where(dataset=dataset.name, file=mask(url))
        raise
    except OSError as exc:
        raise _cache_error(exc, folder, dataset.name) from exc


def _fetch_locked(dataset: Dataset, settings: Settings, url: str, archive: Path,
                  pinned: str | None, progress: Progress | None) -> LocalCopy:
    have = cached(archive)
    unzipper = None
    if pinned and have and have.sha256 == pinned:
        validators, changed, resumed = have, False, 0
    else:
        unzipper = _unzipper(dataset, settings, archive)
        with unzipper or nullcontext():
            got = download(url, archive, limits=_limits(settings), progress=progress,
                           sink=unzipper)
        validators, changed, resumed = got.validators, got.changed, got.resumed_from
    try:
        _verify_checksum(dataset, archive, validators, pinned)
        path = _readable_file(dataset, settings, archive, validators, unzipper)
    finally:
        if unzipper:
            unzipper.discard()
    return LocalCopy(dataset.name, mask(url), archive, path, validators, changed, resumed)


def _unzipper(dataset: Dataset, settings: Settings, archive: Path) -> Unzipper | None:
    """A follower that inflates the archive while it downloads (zip sources only)."""
    if dataset.source.archive is None:
        return None
    for stale in archive.parent.glob(".unzip-*"):  # a killed worker's; we hold the host lock
        shutil.rmtree(stale, ignore_errors=True)
    return Unzipper(dataset.source.member, stream_target(archive), _archive_limits(settings))


def _verify_checksum(dataset: Dataset, archive: Path, got: Validators, pinned: str | None) -> None:
    expected = dataset.source.sha256
    if expected and got.sha256 != expected:
        _discard(archive)
        raise BadSource(f"sha256 {got.sha256} does not match the catalog's {expected}",
                        file=archive.name,
                        hint="upstream changed the file or it was corrupted in transit; if "
                             "upstream published a new version, update the catalog's sha256")
    if pinned and got.sha256 != pinned:
        raise BadSource(f"upstream now serves a different file (sha256 {got.sha256[:12]}…) than "
                        f"the one this run started loading ({pinned[:12]}…)",
                        file=archive.name,
                        hint="upstream published a new version mid-run; enqueue the dataset again")


def _archive_limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(settings.max_extract_bytes, settings.max_compression_ratio)


def _readable_file(dataset: Dataset, settings: Settings, archive: Path,
                   validators: Validators, unzipper: Unzipper | None) -> Path:
    if dataset.source.archive is None:
        return archive
    dest = archive.parent / f"extracted-{validators.sha256[:16]}"
    adopted = unzipper.adopt(archive, dest) if unzipper and not extracted(dest) else None
    try:
        path = adopted or extract_member(archive, dataset.source.member, dest,
                                         _archive_limits(settings))
    except BadSource as exc:
        if "corrupt" in exc.problem:
            _discard(archive)
        raise
    _prune_extracted(archive.parent, keep=dest)
    return path


def _prune_extracted(folder: Path, keep: Path) -> None:
    versions = sorted(folder.glob("extracted-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    old = [p for p in versions if p != keep][KEEP_EXTRACTED - 1:]
    for stale in old:
        shutil.rmtree(stale, ignore_errors=True)


def _discard(archive: Path) -> None:
    """Forget a bad download so that the next attempt fetches it anew."""
    for path in (archive, meta_path(archive)):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _limits(settings: Settings) -> Limits:
    return Limits(settings.connect_timeout, settings.read_timeout, settings.max_download_bytes)


@contextmanager
def _host_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cache_error(exc: OSError, folder: Path, dataset: str) -> CacheError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    full = " (disk full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return CacheError(f"can't write the cache at {folder}: {reason}{full}", dataset=dataset,
                      hint="free disk space or point GEOLOAD_CACHE_DIR at a larger, writable disk")
