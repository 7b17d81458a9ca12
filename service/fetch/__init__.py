"""Make a dataset's source file readable on this host, once per host.

:func:`fetch` downloads (:mod:`~service.fetch.http`) into this host's cache
(:mod:`~service.fetch.cache`), verifies it and extracts the member to read
(:mod:`~service.fetch.unzip`, inflating while the bytes arrive). A run pins the sha256
it started with, so a worker on another host loads the very same bytes, or fails
clearly if upstream changed in between; a pinned version already complete on this host
is found without waiting for the host lock.

>>> local = fetch(catalog.get("gadm"), settings, pinned_sha256=load.sha256)
>>> local.path          # the GeoPackage (or shapefile) to read
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from service.catalog import Dataset
from service.errors import BadSource, CorruptArchive, GeoloadError
from service.fetch import cache, local
from service.fetch.http import Limits, Progress, Validators, download
from service.fetch.mirror import source_url
from service.fetch.unzip import ArchiveLimits, Unzipper, extract_member, extracted
from service.settings import Settings
from service.urls import mask

__all__ = ["LocalCopy", "fetch", "source_url"]


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


def fetch(dataset: Dataset, settings: Settings, *, pinned_sha256: str | None = None,
          progress: Progress | None = None) -> LocalCopy:
    """Download (if needed), verify and extract ``dataset``'s source on this host."""
    if dataset.source.user and local.is_local(dataset.url(settings)):
        return _local(dataset, settings, pinned_sha256)
    url = source_url(dataset, settings)
    archive = cache.archive_path(settings.cache_dir, dataset.name, url)
    try:
        if pinned_sha256 and (here := _pinned_here(dataset, archive, pinned_sha256)):
            return LocalCopy(dataset.name, mask(url), archive, here.path, here.validators,
                             changed=False)
        with cache.host_lock(archive.parent):
            return _fetch_locked(dataset, settings, url, archive, pinned_sha256, progress)
    except GeoloadError as exc:
        exc.where(dataset=dataset.name, file=mask(url))
        raise
    except OSError as exc:
        raise cache.cache_error(exc, archive.parent, dataset.name) from exc


def _local(dataset: Dataset, settings: Settings, pinned: str | None) -> LocalCopy:
    """A user's file on a local path: read in place, or extracted into the cache if zipped."""
    try:
        found = local.validators(dataset.url(settings), settings.cache_dir, pinned)
        path = local.local_path(found.url)
        if dataset.source.archive is not None:
            dest = cache.extracted_dir(settings.cache_dir / dataset.name / path.name,
                                       found.sha256)
            path = extract_member(path, dataset.source.member, dest, _archive_limits(settings))
    except GeoloadError as exc:
        exc.where(dataset=dataset.name)
        raise
    return LocalCopy(dataset.name, found.url, local.local_path(found.url), path, found,
                     changed=pinned is None)


def _pinned_here(dataset: Dataset, archive: Path, pinned: str) -> cache.Here | None:
    """The lock-free path: the pinned version complete on this host, as the catalog wants."""
    if dataset.source.sha256 and dataset.source.sha256 != pinned:
        return None  # the locked path discards it and says why
    return cache.pinned_copy(archive, pinned, unpacked=dataset.source.archive is not None)


def _fetch_locked(dataset: Dataset, settings: Settings, url: str, archive: Path,
                  pinned: str | None, progress: Progress | None) -> LocalCopy:
    have = cache.cached(archive)
    follower = None
    if pinned and have and have.sha256 == pinned:
        validators, changed, resumed = have, False, 0
    else:
        follower = _follower(dataset, settings, archive)
        with follower or nullcontext():
            got = download(url, archive, limits=_limits(settings), previous=have,
                           progress=progress, sink=follower)
        if got.part is not None:
            cache.install(got.part, archive, got.validators)
        validators, changed, resumed = got.validators, got.changed, got.resumed_from
    try:
        _verify_checksum(dataset, archive, validators, pinned)
        path = _readable_file(dataset, settings, archive, validators, follower)
    finally:
        if follower:
            follower.discard()
    return LocalCopy(dataset.name, mask(url), archive, path, validators, changed, resumed)


def _follower(dataset: Dataset, settings: Settings, archive: Path) -> Unzipper | None:
    """A follower that inflates the archive while it downloads (zip sources only)."""
    if dataset.source.archive is None:
        return None
    return Unzipper(dataset.source.member, archive.parent, _archive_limits(settings))


def _verify_checksum(dataset: Dataset, archive: Path, got: Validators, pinned: str | None) -> None:
    expected = dataset.source.sha256
    if expected and got.sha256 != expected:
        cache.discard(archive)
        raise BadSource(f"sha256 {got.sha256} does not match the catalog's {expected}",
                        file=archive.name,
                        hint="upstream changed the file or it was corrupted in transit; if "
                             "upstream published a new version, update the catalog's sha256")
    if pinned and got.sha256 != pinned:
        raise BadSource(f"upstream now serves a different file (sha256 {got.sha256[:12]}…) than "
                        f"the one this run started loading ({pinned[:12]}…)",
                        file=archive.name,
                        hint="upstream published a new version mid-run; enqueue the dataset again")


def _readable_file(dataset: Dataset, settings: Settings, archive: Path,
                   validators: Validators, follower: Unzipper | None) -> Path:
    if dataset.source.archive is None:
        return archive
    dest = cache.extracted_dir(archive, validators.sha256)
    adopted = follower.adopt(archive, dest) if follower and not extracted(dest) else None
    try:
        path = adopted or extract_member(archive, dataset.source.member, dest,
                                         _archive_limits(settings))
    except CorruptArchive:
        cache.discard(archive)
        raise
    cache.prune(archive.parent, keep=dest)
    return path


def _archive_limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(settings.max_extract_bytes, settings.max_compression_ratio)


def _limits(settings: Settings) -> Limits:
    return Limits(settings.connect_timeout, settings.read_timeout, settings.max_download_bytes)
