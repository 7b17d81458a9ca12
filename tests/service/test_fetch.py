"""The per-host cache: conditional requests, checksums, pinned versions, one download per host."""

from __future__ import annotations

import multiprocessing
from dataclasses import replace

import pytest

from service import catalog
from service.download import cached
from service.errors import BadSource
from service.fetch import fetch

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
    assert not list(got.archive.parent.glob(".unzip-*"))
