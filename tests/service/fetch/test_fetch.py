"""The per-host cache: conditional requests, checksums, pinned versions, one download per host."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from devtools.testdata.server import etag_for, serve
from service import catalog
from service.catalog import Dataset, Source
from service.errors import BadSource, CacheError
from service.fetch import cache, fetch
from service.fetch.cache import cached
from service.fetch.diskspace import free_bytes
from service.fetch.http import part_path
from tests.support.craft import zip_files

GADM_PATH = "/gadm/gadm4.1/gadm_410-levels.zip"


@pytest.fixture()
def here(settings, tmp_path):
    """The session's mirror, with a cache of this test's own."""
    return replace(settings, cache_dir=tmp_path / "cache")


def gets(upstream) -> list:
    return [r for r in upstream.requests(GADM_PATH) if r.method == "GET"]


def test_a_second_fetch_asks_conditionally_and_keeps_the_file(here, upstream):
    upstream.clear_log()
    first = fetch(catalog.get("gadm"), here)
    assert first.changed and first.path.suffix == ".gpkg" and first.path.exists()
    second = fetch(catalog.get("gadm"), here)
    assert not second.changed and second.path == first.path
    assert second.validators.sha256 == first.validators.sha256
    assert [r.status for r in gets(upstream)] == [200, 304]
    assert gets(upstream)[1].headers["If-None-Match"] == first.validators.etag


def test_a_pinned_version_in_the_cache_needs_no_request(here, upstream):
    pinned = fetch(catalog.get("gadm"), here).validators.sha256
    upstream.clear_log()
    again = fetch(catalog.get("gadm"), here, pinned_sha256=pinned)
    assert again.validators.sha256 == pinned and not gets(upstream)
    with pytest.raises(BadSource, match="upstream now serves a different file"):
        fetch(catalog.get("gadm"), replace(here, cache_dir=here.cache_dir / "other-host"),
              pinned_sha256="0" * 64)


def test_a_catalog_checksum_mismatch_is_refused_and_forgotten(here):
    gadm = catalog.get("gadm")
    pinned = replace(gadm, source=replace(gadm.source, sha256="f" * 64))
    with pytest.raises(BadSource, match="does not match the catalog's") as caught:
        fetch(pinned, here)
    assert "[gadm]" in str(caught.value) and "What to do:" in str(caught.value)
    archive = here.cache_dir / "gadm" / "gadm_410-levels.zip"
    assert cached(archive) is None and not archive.exists()


def _fetch_in_child(settings) -> str:
    return fetch(catalog.get("gadm"), settings).validators.sha256


def test_two_workers_on_one_host_download_once(here, upstream):
    upstream.clear_log()
    upstream.fault(GADM_PATH, "throttle", rate=4_000_000, once=True)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        digests = pool.map(_fetch_in_child, [here, here])
    assert digests[0] == digests[1]
    assert [r.status for r in gets(upstream)].count(200) == 1


def test_download_progress_is_throttled_and_ends_at_the_total(here):
    calls: list[tuple[int, int | None]] = []
    got = fetch(catalog.get("gadm"), here, progress=lambda done, total: calls.append((done, total)))
    size = got.validators.size
    assert calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    # One report per 64 KiB block would be size / 65536 calls; reports are time-throttled.
    assert len(calls) < max(3, size // (64 << 10))


@pytest.mark.parametrize("dataset", ["gadm", "timezone"])
def test_a_fresh_download_is_unpacked_as_it_arrives(here, monkeypatch, dataset):
    def not_again(*args, **kwargs):
        raise AssertionError("extracted again after the download")

    monkeypatch.setattr("service.fetch.extract_member", not_again)
    got = fetch(catalog.get(dataset), here)
    assert got.changed and got.path.exists() and got.path.stat().st_size > 0
    assert (got.path.parent / ".complete").read_text() == got.path.name
    # Nothing left beside the archive, its sidecar, the lock and the extraction: no
    # follower's work directory, no partial download.
    assert {p.name for p in got.archive.parent.iterdir()} == {
        got.archive.name, f"{got.archive.name}.json", ".lock", got.path.parent.name}


def _fetch_in_thread(dataset: str, settings, pinned: str) -> tuple[threading.Thread, dict]:
    got: dict = {}
    thread = threading.Thread(target=lambda: got.update(copy=fetch(
        catalog.get(dataset), settings, pinned_sha256=pinned)), daemon=True)
    thread.start()
    return thread, got


@pytest.mark.parametrize("dataset", ["gadm", "timezone"])
def test_a_pinned_version_complete_here_is_found_without_the_host_lock(here, upstream, dataset):
    """Every chunk asks for its run's pinned version: it must not queue behind another
    worker's download on this host, nor ask upstream."""
    first = fetch(catalog.get(dataset), here)
    upstream.clear_log()
    with cache.host_lock(first.archive.parent):  # another worker holds the host
        started = time.monotonic()
        thread, got = _fetch_in_thread(dataset, here, first.validators.sha256)
        thread.join(10)
        waited = time.monotonic() - started
    assert got["copy"].path == first.path and not got["copy"].changed
    assert waited < 2, f"waited {waited:.1f} s for the host lock"
    assert not upstream.requests()


def test_a_pinned_version_not_extracted_here_waits_for_the_host_lock(here):
    first = fetch(catalog.get("gadm"), here)
    shutil.rmtree(first.path.parent)  # pruned, say: it must be extracted again, under the lock
    with cache.host_lock(first.archive.parent):
        thread, got = _fetch_in_thread("gadm", here, first.validators.sha256)
        thread.join(0.5)
        assert thread.is_alive() and not got
    thread.join(30)
    assert got["copy"].path == first.path and got["copy"].path.stat().st_size > 0


# --- free space: asked before writing, measured on a small filesystem ------------------------

SMALL_DISK = 4 << 20


@pytest.fixture()
def small_disk(tmp_path) -> Iterator[Path]:
    """A 4 MiB tmpfs: what was written to it can be measured, and it really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI is root)")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(disk)],
                   check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


class DiskWatch:
    """The most bytes ever in use on a filesystem while the ``with`` block ran."""

    def __init__(self, disk: Path) -> None:
        self.disk = disk
        self.peak = self._used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _used(self) -> int:
        stats = os.statvfs(self.disk)
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize

    def _poll(self) -> None:
        while not self._stop.wait(0.0005):
            self.peak = max(self.peak, self._used())

    def __enter__(self) -> "DiskWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._used())


def _served(tmp_path, name: str, content: bytes, *, archive: bool = True):
    """A dataset whose only file (``name``) is served on loopback; returns it and the server."""
    root = tmp_path / "upstream"
    root.mkdir(exist_ok=True)
    path = root / name
    if archive:
        zip_files(path, {"x.gpkg": content})
    else:
        path.write_bytes(content)
    source = Source(url=f"https://upstream.example/{name}", member="*.gpkg",
                    archive="zip" if archive else None)
    return Dataset("spacetest", "free space", source, (), "test", "https://upstream.example"), path


def _fetch_on(dataset: Dataset, settings, server, cache: Path):
    return fetch(dataset, replace(settings, mirror=server.url, cache_dir=cache))


def test_a_download_larger_than_the_free_space_is_refused_before_writing(settings, tmp_path,
                                                                         small_disk):
    dataset, path = _served(tmp_path, "big.zip", os.urandom(5_000_000))
    with serve(path.parent) as server, DiskWatch(small_disk) as disk, \
            pytest.raises(CacheError) as caught:
        _fetch_on(dataset, settings, server, small_disk / "cache")
    text = str(caught.value)
    assert f"not enough free space in {small_disk / 'cache' / 'spacetest'}" in text
    assert f"downloading big.zip needs {path.stat().st_size:,} bytes, only " in text
    assert "are free" in text and "GEOLOAD_CACHE_DIR" in text and "[spacetest]" in text
    assert disk.peak < 64 << 10, f"{disk.peak:,} bytes were written"


def test_a_member_larger_than_the_free_space_is_refused_before_it_is_unpacked(
        settings, tmp_path, small_disk):
    """A 1.75 MB zip of a 6 MB member: the download fits, the member doesn't. Its size, from
    the zip's headers, is checked before a byte of it is written."""
    member = np.random.default_rng(3).integers(0, 4, 6_000_000, dtype=np.uint8).tobytes()
    dataset, path = _served(tmp_path, "member.zip", member)
    assert path.stat().st_size < SMALL_DISK // 2
    with serve(path.parent) as server, DiskWatch(small_disk) as disk, \
            pytest.raises(CacheError) as caught:
        _fetch_on(dataset, settings, server, small_disk / "cache")
    assert disk.peak < path.stat().st_size + (256 << 10), f"{disk.peak:,} bytes were written"
    found = re.search(r"not enough free space in (.+): unpacking x\.gpkg(?: beside the ([\d,]+) "
                      r"bytes still to download)? needs ([\d,]+) bytes, only ([\d,]+) are free",
                      str(caught.value))
    assert found, str(caught.value)
    folder, to_come, needed, free = found.groups()
    assert folder == str(small_disk / "cache" / "spacetest")
    assert int(needed.replace(",", "")) == 6_000_000 + int((to_come or "0").replace(",", ""))
    assert int(free.replace(",", "")) < int(needed.replace(",", ""))


def test_a_resumed_download_needs_room_only_for_the_rest(settings, tmp_path, small_disk):
    """3 MB to fetch, 2.5 MB already there from a cut download, 1.5 MB free: it fits."""
    content = os.urandom(3_000_000)
    dataset, path = _served(tmp_path, "plain.bin", content, archive=False)
    cache = small_disk / "cache"
    part = part_path(cache / "spacetest" / "plain.bin")
    part.parent.mkdir(parents=True)
    part.write_bytes(content[:2_500_000])
    part.with_name(part.name + ".json").write_text(json.dumps({"etag": etag_for(path)}))
    assert free_bytes(small_disk) < len(content)
    with serve(path.parent) as server:
        got = _fetch_on(dataset, settings, server, cache)
        assert [r.status for r in server.requests() if r.method == "GET"] == [206]
    assert got.resumed_from == 2_500_000 and got.path.read_bytes() == content
