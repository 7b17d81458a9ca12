"""Stream one URL to a partial file beside its destination: resumable, conditional, verified.

Bytes go to ``<name>.part``; a download hands back the complete, size-checked part and
its :class:`Validators`, and the caller installs it (:mod:`service.fetch.cache` renames
it into place with its sidecar). A cut connection keeps the ``.part`` and the validator
it was fetched under, so the next attempt asks for the rest with ``Range``/``If-Range``
instead of starting over. Nothing here knows where the cache keeps what it installed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from service.errors import BadSource, CacheError, UpstreamUnavailable
from service.fetch.diskspace import require_free
from service.throttle import Every
from service.urls import mask

#: Read size: small enough that a cut connection leaves almost everything on disk.
BLOCK = 1 << 16
#: A download must bring at least this much per GEOLOAD_READ_TIMEOUT, or it counts as stalled.
MIN_PROGRESS_BYTES = 64 << 10
#: Progress is reported at most this often: once per 64 KiB block was 3,000 Redis round
#: trips for the GADM zip.
PROGRESS_INTERVAL_S = 0.1
USER_AGENT = "geoload/0.1 (+https://github.com/geoload/geoload)"
#: What a zip archive starts with; anything else (an HTML page, JSON error) is refused.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

Progress = Callable[[int, int | None], None]


class Sink(Protocol):
    """Receives a fresh download's bytes in order, having heard how many will come."""

    def expect(self, total: int | None) -> None:
        """The download's size, once the response headers say (None: not said)."""

    def feed(self, block: bytes) -> None:
        """The next bytes, as they are written; raising stops the download."""


@dataclass(frozen=True)
class Validators:
    """What upstream said about a version (and the sha256 of its bytes)."""

    url: str
    etag: str | None
    last_modified: str | None
    size: int
    sha256: str


@dataclass(frozen=True)
class Limits:
    connect_timeout: float
    read_timeout: float
    max_bytes: int


@dataclass(frozen=True)
class Downloaded:
    """The outcome: ``changed`` is False when upstream answered 304 Not Modified to the
    validators sent; otherwise ``part`` holds the complete body, for the caller to install."""

    validators: Validators
    changed: bool
    resumed_from: int
    part: Path | None = None


def part_path(path: Path) -> Path:
    """Where the bytes of ``path``'s download go until they are complete."""
    return path.with_name(path.name + ".part")


def download(url: str, path: Path, *, limits: Limits, previous: Validators | None = None,
             session: requests.Session | None = None, progress: Progress | None = None,
             sink: Sink | None = None) -> Downloaded:
    """Fetch ``url`` for ``path`` into its part file, unless upstream answers 304 to
    ``previous`` (the validators of the copy the caller has); the caller holds the lock on
    ``path``'s folder and installs the part.

    ``sink`` sees every byte of a download that starts from the first byte (not of a
    resumed one), as it is written. The free space is checked against the bytes still to
    come before any is written.
    """
    session = session or new_session()
    part = part_path(path)
    resume = _resume_point(part)
    response = _get(session, url, _request_headers(previous, resume), limits)
    with response:
        if response.status_code == 304 and previous is not None:
            return Downloaded(previous, changed=False, resumed_from=0)
        if response.status_code == 416 and resume is not None:
            _forget(part)  # nothing left to fetch after it (a complete part): start over
            return download(url, path, limits=limits, previous=previous, session=session,
                            progress=progress, sink=sink)
        _check_status(response, url)
        start = resume.size if resume and response.status_code == 206 else 0
        total = _expected_total(response, start, url)
        if total is not None and total > limits.max_bytes:
            raise BadSource(f"the file is {total:,} bytes, over the {limits.max_bytes:,} cap",
                            file=mask(url),
                            hint="raise GEOLOAD_MAX_DOWNLOAD_BYTES if this size is expected")
        if total is not None:
            require_free(path.parent, total - start, f"downloading {path.name}")
        if sink is not None and not start:
            sink.expect(total)
        validators = _stream_to_part(response, url, part, start, total, limits, progress,
                                     None if start else sink)
    _part_meta(part).unlink(missing_ok=True)  # complete: nothing is left to resume
    return Downloaded(validators, changed=True, resumed_from=start, part=part)


@dataclass(frozen=True)
class Probed:
    """What upstream serves now; ``not_modified`` when it matched the validators sent."""

    not_modified: bool
    etag: str | None
    last_modified: str | None


def probe(url: str, previous: Validators | None, *, limits: Limits,
          session: requests.Session | None = None) -> Probed:
    """Ask what ``url`` serves now, conditionally on ``previous``; the body is never read.

    A GET, not a HEAD: signed redirect targets (GitHub release assets) accept only the
    method they were signed for. The same rules as :func:`download` apply.
    """
    with _get(session or new_session(), url, _request_headers(previous, None), limits) as response:
        if response.status_code == 304 and previous is not None:
            return Probed(True, previous.etag, previous.last_modified)
        _check_status(response, url)
        return Probed(False, response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _get(session: requests.Session, url: str, headers: dict[str, str],
         limits: Limits) -> requests.Response:
    try:
        return session.get(url, headers=headers, stream=True, allow_redirects=True,
                           timeout=(limits.connect_timeout, limits.read_timeout),
                           hooks={"response": _refuse_downgrade})
    except requests.RequestException as exc:
        raise UpstreamUnavailable(f"can't reach the server: {_reason(exc)}", file=mask(url),
                                  hint="check the network or GEOLOAD_MIRROR; retried automatically"
                                  ) from exc


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass(frozen=True)
class _Resume:
    size: int
    etag: str | None
    last_modified: str | None


def _resume_point(part: Path) -> _Resume | None:
    """A partial download we may continue: it has bytes and a validator for If-Range."""
    meta = _load_part_meta(part)
    try:
        size = part.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0 or meta is None or not (meta.get("etag") or meta.get("last_modified")):
        return None
    return _Resume(size, meta.get("etag"), meta.get("last_modified"))


def _request_headers(previous: Validators | None, resume: _Resume | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "identity"}
    if previous is not None:
        if previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
    if resume is not None:
        headers["Range"] = f"bytes={resume.size}-"
        headers["If-Range"] = resume.etag or resume.last_modified or ""
    return headers


def _refuse_downgrade(response: requests.Response, *args: object, **kwargs: object) -> None:
    """Never follow an https URL to plain http, where anyone on the path could swap the file.

    A response hook sees each redirect before requests follows it, so no plain-http
    request is ever made. (An http URL, allowed only for a configured mirror, may redirect
    anywhere.)
    """
    if not response.is_redirect or urlsplit(response.url).scheme != "https":
        return
    target = urljoin(response.url, response.headers.get("Location", ""))
    if urlsplit(target).scheme != "https":
        raise BadSource(f"it redirects to {mask(target)}, which is not https",
                        file=mask(response.url),
                        hint="upstream must stay on https; to fetch over plain http, set "
                             "GEOLOAD_MIRROR to that location explicitly")


def _check_status(response: requests.Response, url: str) -> None:
    code = response.status_code
    if code in (200, 206):
        return
    if code in (404, 410):
        raise BadSource(f"the server answered {code} {response.reason}: the file is not there",
                        file=mask(url), hint="check the release setting and GEOLOAD_MIRROR; "
                                             "upstream may have moved the file")
    if code == 429 or code >= 500:
        raise UpstreamUnavailable(f"the server answered {code} {response.reason}",
                                  file=mask(url),
                                  hint="upstream is failing or busy; retried with backoff")
    raise BadSource(f"the server answered {code} {response.reason}", file=mask(url),
                    hint="check the URL, credentials and GEOLOAD_MIRROR")


def _expected_total(response: requests.Response, start: int, url: str) -> int | None:
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")
        span, _, total = content_range.removeprefix("bytes ").strip().partition("/")
        first = span.partition("-")[0]
        if not first.isdigit() or int(first) != start:
            raise UpstreamUnavailable(f"the server resumed at the wrong offset "
                                      f"({content_range!r}, wanted {start})", file=mask(url),
                                      hint="retried automatically from scratch")
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _stream_to_part(response: requests.Response, url: str, part: Path, start: int,
                    total: int | None, limits: Limits, progress: Progress | None,
                    sink: Sink | None) -> Validators:
    etag = response.headers.get("ETag")
    modified = response.headers.get("Last-Modified")
    _save_part_meta(part, etag, modified)
    digest = _hash_prefix(part, start)
    written = start
    report = Every(PROGRESS_INTERVAL_S)
    try:
        with open(part, "r+b" if start else "wb") as out:
            out.seek(start)
            out.truncate()
            for block in _blocks(response, url, limits):
                if written == 0:
                    _check_magic(block, response, url)
                written += len(block)
                if written > limits.max_bytes:
                    raise BadSource(f"the server sent more than {limits.max_bytes:,} bytes",
                                    file=mask(url),
                                    hint="raise GEOLOAD_MAX_DOWNLOAD_BYTES if that is expected")
                out.write(block)
                digest.update(block)
                if sink:
                    sink.feed(block)
                if progress and report.due():
                    progress(written, total)
    except OSError as exc:
        _handle_disk_error(exc, part)
        raise
    if progress:
        progress(written, total)
    if total is not None and written != total:
        raise UpstreamUnavailable(f"the download ended after {written:,} of {total:,} bytes",
                                  file=mask(url), hint="the download resumes from there on retry")
    return Validators(url=mask(url), etag=etag, last_modified=modified, size=written,
                      sha256=digest.hexdigest())


def _blocks(response: requests.Response, url: str, limits: Limits) -> Iterator[bytes]:
    """The body as it arrives; a server that only trickles counts as stalled.

    The read timeout fires only when *nothing* arrives for that long, so a server
    sending a byte a second would hold a worker for days. Reading what has arrived
    (``read1``) lets us also require :data:`MIN_PROGRESS_BYTES` per read-timeout window.
    """
    window_start, window_bytes = time.monotonic(), 0
    try:
        while block := response.raw.read1(BLOCK):
            yield block
            window_bytes += len(block)
            elapsed = time.monotonic() - window_start
            if elapsed >= limits.read_timeout:
                if window_bytes < MIN_PROGRESS_BYTES:
                    raise UpstreamUnavailable(
                        f"the download stalled: {window_bytes:,} bytes in {elapsed:.0f} s",
                        file=mask(url),
                        hint="upstream or the network is too slow; the download resumes on "
                             "retry (GEOLOAD_READ_TIMEOUT sets the window)")
                window_start, window_bytes = time.monotonic(), 0
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise UpstreamUnavailable(f"the download was cut: {_reason(exc)}", file=mask(url),
                                  hint="it resumes where it stopped on retry") from exc


def _check_magic(block: bytes, response: requests.Response, url: str) -> None:
    """Refuse an HTML error page (or anything else) served in place of the archive."""
    if url.lower().endswith(".zip") and not block.startswith(ZIP_MAGIC):
        kind = response.headers.get("Content-Type", "unknown type")
        looks = "an HTML page" if b"<html" in block[:512].lower() or "html" in kind else kind
        raise BadSource(f"the server returned {looks}, not a zip archive "
                        f"(first bytes {block[:16]!r})", file=mask(url),
                        hint="upstream or the mirror serves an error page; check the URL in a "
                             "browser and GEOLOAD_MIRROR")


def _hash_prefix(part: Path, size: int) -> "hashlib._Hash":
    digest = hashlib.sha256()
    if size:
        with open(part, "rb") as existing:
            remaining = size
            while remaining:
                block = existing.read(min(BLOCK, remaining))
                if not block:
                    break
                digest.update(block)
                remaining -= len(block)
    return digest


def _handle_disk_error(exc: OSError, part: Path) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
        _forget(part)
        raise CacheError(f"can't write the download cache at {part.parent}: "
                         f"{os.strerror(exc.errno or 0)}",
                         file=str(part),
                         hint="free disk space or point GEOLOAD_CACHE_DIR at a larger, writable "
                              "disk") from exc


def _part_meta(part: Path) -> Path:
    """The validator a part was fetched under, which ``If-Range`` must send to resume it."""
    return part.with_name(part.name + ".json")


def _save_part_meta(part: Path, etag: str | None, modified: str | None) -> None:
    meta = _part_meta(part)
    try:
        meta.write_text(json.dumps({"etag": etag, "last_modified": modified}))
    except OSError as exc:
        _handle_disk_error(exc, part)
        raise


def _load_part_meta(part: Path) -> dict[str, str | None] | None:
    try:
        value = json.loads(_part_meta(part).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _forget(part: Path) -> None:
    part.unlink(missing_ok=True)
    _part_meta(part).unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"

