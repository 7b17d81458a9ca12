"""The cache's file and its ``.json`` sidecar never disagree, whatever the crash point."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from devtools.testdata.server import serve
from service.fetch import cache
from service.fetch.cache import cached, install
from service.fetch.http import Downloaded, Limits, Validators, download

LIMITS = Limits(connect_timeout=5, read_timeout=10, max_bytes=10_000_000)


class Crash(BaseException):
    """A worker killed at that exact point (a real crash there can't be timed)."""


def _crash_renaming_the_download(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace

    def replace(src: object, dst: object) -> None:
        if str(src).endswith(".part"):
            raise Crash("killed before the download was renamed into place")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(cache.os, "replace", replace)


def _crash_saving_the_sidecar(monkeypatch: pytest.MonkeyPatch) -> None:
    def save(validators: Validators, path: Path) -> None:
        raise Crash("killed after the rename, before the sidecar was written")

    monkeypatch.setattr(cache, "_save", save)


def _refresh(url: str, target: Path) -> Downloaded:
    """What ``fetch`` does with the cache: a conditional download, installed if it changed."""
    got = download(url, target, limits=LIMITS, previous=cached(target))
    if got.part is not None:
        install(got.part, target, got.validators)
    return got


@pytest.mark.parametrize("crash", [_crash_renaming_the_download, _crash_saving_the_sidecar])
def test_a_crash_while_replacing_a_version_leaves_no_false_claim(tmp_path, monkeypatch, crash):
    root, folder = tmp_path / "upstream", tmp_path / "cache"
    root.mkdir()
    folder.mkdir()
    served = root / "data.zip"
    served.write_bytes(b"PK\x03\x04" + os.urandom(100_000))
    target = folder / "data.zip"
    with serve(root) as server:
        url = server.url_for("data.zip")
        first = _refresh(url, target)
        assert cached(target) == first.validators
        new = root / "new.zip"  # the same size, other bytes: only the sha256 tells them apart
        new.write_bytes(b"PK\x03\x04" + os.urandom(100_000))
        new.replace(served)
        crash(monkeypatch)
        with pytest.raises(Crash):
            _refresh(url, target)
        monkeypatch.undo()
        claim = cached(target)
        if claim is not None:  # whatever the cache still claims is what the file holds
            assert claim.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
        again = _refresh(url, target)
    assert again.validators.sha256 == hashlib.sha256(served.read_bytes()).hexdigest()
    assert cached(target) == again.validators


def test_a_torn_file_is_not_claimed_and_a_discarded_one_is_fetched_anew(tmp_path):
    root, folder = tmp_path / "upstream", tmp_path / "cache"
    root.mkdir()
    folder.mkdir()
    (root / "data.zip").write_bytes(b"PK\x03\x04" + os.urandom(50_000))
    target = folder / "data.zip"
    with serve(root) as server:
        url = server.url_for("data.zip")
        _refresh(url, target)
        with open(target, "r+b") as torn:  # the file no longer has the size its sidecar says
            torn.truncate(1000)
        assert cached(target) is None
        _refresh(url, target)
        assert cached(target) is not None
        cache.discard(target)
        assert cached(target) is None and not target.exists()
        server.clear_log()
        again = _refresh(url, target)
        requests = server.requests()
    assert again.changed and [r.status for r in requests] == [200]
    assert "If-None-Match" not in requests[0].headers  # nothing left to be conditional on


def test_pruning_keeps_the_current_extraction_and_the_one_before(tmp_path):
    folder = tmp_path / "cache" / "gadm"
    archive = folder / "gadm.zip"
    made = []
    for n in range(4):
        path = cache.extracted_dir(archive, str(n) * 64)
        path.mkdir(parents=True)
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
        made.append(path)
    cache.prune(folder, keep=made[1])
    assert sorted(p for p in folder.iterdir()) == sorted([made[1], made[3]])
