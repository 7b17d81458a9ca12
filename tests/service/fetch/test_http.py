"""One URL to a partial file, against a real HTTP server on loopback: resume, 304, limits."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from devtools.testdata.server import DataServer, serve
from service.errors import BadSource, UpstreamUnavailable
from service.fetch.http import Limits, download, part_path, probe

LIMITS = Limits(connect_timeout=5, read_timeout=10, max_bytes=10_000_000)
BODY = b"PK\x03\x04" + os.urandom(400_000)


@pytest.fixture()
def served(tmp_path: Path) -> tuple[DataServer, str, Path]:
    root = tmp_path / "upstream"
    root.mkdir()
    (root / "data.zip").write_bytes(BODY)
    with serve(root) as server:
        yield server, server.url_for("data.zip"), tmp_path / "cache" / "data.zip"


def test_a_download_hands_back_the_complete_part_and_its_sha256(served):
    server, url, target = served
    target.parent.mkdir(parents=True)
    got = download(url, target, limits=LIMITS)
    assert got.changed and got.part == part_path(target) and got.resumed_from == 0
    assert got.part.read_bytes() == BODY and not target.exists()  # installing is the caller's
    assert got.validators.size == len(BODY)
    assert got.validators.sha256 == hashlib.sha256(BODY).hexdigest()
    assert sorted(p.name for p in target.parent.iterdir()) == [got.part.name]


def test_a_cut_download_resumes_where_it_stopped(served):
    server, url, target = served
    target.parent.mkdir(parents=True)
    server.fault(url, "truncate", after=150_000, once=True)
    with pytest.raises(UpstreamUnavailable, match="the download"):
        download(url, target, limits=LIMITS)
    kept = part_path(target).stat().st_size
    assert 0 < kept <= 150_000
    server.clear_log()
    got = download(url, target, limits=LIMITS)
    [request] = server.requests()
    assert request.status == 206 and request.headers["Range"] == f"bytes={kept}-"
    assert request.headers["If-Range"] == got.validators.etag
    assert request.bytes_sent == len(BODY) - kept  # only the rest came over the wire
    assert got.resumed_from == kept and got.part is not None
    assert got.validators.sha256 == hashlib.sha256(BODY).hexdigest()


def test_upstream_answering_304_to_the_previous_validators_writes_nothing(served):
    server, url, target = served
    target.parent.mkdir(parents=True)
    first = download(url, target, limits=LIMITS)
    assert first.part is not None
    first.part.unlink()
    server.clear_log()
    again = download(url, target, limits=LIMITS, previous=first.validators)
    assert not again.changed and again.part is None and again.validators == first.validators
    assert [r.status for r in server.requests()] == [304]
    assert list(target.parent.iterdir()) == []
    assert probe(url, first.validators, limits=LIMITS).not_modified


def test_a_file_over_the_cap_is_refused_before_a_byte_is_written(served):
    server, url, target = served
    target.parent.mkdir(parents=True)
    with pytest.raises(BadSource, match="over the 100,000 cap"):
        download(url, target, limits=Limits(5, 10, max_bytes=100_000))
    assert not part_path(target).exists() or part_path(target).stat().st_size == 0


def test_a_trickling_server_counts_as_stalled(served):
    """The read timeout fires only on silence; 64 KiB per read-timeout window is required."""
    server, url, target = served
    target.parent.mkdir(parents=True)
    server.fault(url, "throttle", rate=20_000)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match=r"stalled: [\d,]+ bytes in 1 s"):
        download(url, target, limits=Limits(5, read_timeout=1, max_bytes=10_000_000))
    assert time.monotonic() - started < 5
