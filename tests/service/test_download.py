"""The download cache's file and its ``.json`` sidecar never disagree, whatever the crash point."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from devtools.testdata.server import serve
from service import download as dl
from service.download import Limits, Validators, cached, download, meta_path

LIMITS = Limits(connect_timeout=5, read_timeout=10, max_bytes=10_000_000)


class Crash(BaseException):
    """A worker killed at that exact point (a real crash there can't be timed)."""


def _crash_renaming_the_download(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace

    def replace(src: object, dst: object) -> None:
        if str(src).endswith(".part"):
            raise Crash("killed before the download was renamed into place")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(dl.os, "replace", replace)


def _crash_saving_the_sidecar(monkeypatch: pytest.MonkeyPatch) -> None:
    def save(self: Validators, path: Path) -> None:
        raise Crash("killed after the rename, before the sidecar was written")

    monkeypatch.setattr(Validators, "save", save)


@pytest.mark.parametrize("crash", [_crash_renaming_the_download, _crash_saving_the_sidecar])
def test_a_crash_while_replacing_a_version_leaves_no_false_claim(tmp_path, monkeypatch, crash):
    root, cache = tmp_path / "upstream", tmp_path / "cache"
    root.mkdir()
    cache.mkdir()
    served = root / "data.zip"
    served.write_bytes(b"PK\x03\x04" + os.urandom(100_000))
    target = cache / "data.zip"
    with serve(root) as server:
        url = server.url_for("data.zip")
        first = download(url, target, limits=LIMITS)
        assert cached(target) == first.validators
        new = root / "new.zip"  # the same size, other bytes: only the sha256 tells them apart
        new.write_bytes(b"PK\x03\x04" + os.urandom(100_000))
        new.replace(served)
        crash(monkeypatch)
        with pytest.raises(Crash):
            download(url, target, limits=LIMITS)
        monkeypatch.undo()
        claim = cached(target)
        if claim is not None:  # whatever the cache still claims is what the file holds
            assert claim.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
        again = download(url, target, limits=LIMITS)
    assert again.validators.sha256 == hashlib.sha256(served.read_bytes()).hexdigest()
    assert cached(target) == again.validators
    assert Validators.load(meta_path(target)) == again.validators
