"""Inflating while downloading: adopted only when the central directory agrees."""

import io
import os
import threading
import zipfile
from pathlib import Path

import pytest

from service.fetch.unzip import ArchiveLimits, Unzipper, extract_member

LIMITS = ArchiveLimits(max_total_bytes=50_000_000, max_ratio=1000)
SHP = os.urandom(300_000) + b"\x00" * 500_000


def make_zip(path: Path, members: dict[str, bytes], **open_kwargs) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            with zf.open(name, "w", **open_kwargs) as out:
                out.write(data)
    return path


def stream(archive: Path, unzipper: Unzipper, data: bytes | None = None) -> None:
    data = archive.read_bytes() if data is None else data
    with unzipper:
        for at in range(0, len(data), 65536):
            unzipper.feed(data[at:at + 65536])


def shapefile_zip(tmp_path: Path, **open_kwargs) -> Path:
    return make_zip(tmp_path / "tz.zip", {
        "README.txt": b"not wanted", "dist/combined-shapefile.dbf": b"dbf" * 1000,
        "dist/combined-shapefile.shp": SHP, "dist/combined-shapefile.shx": b"shx",
        "dist/other.dbf": b"another stem's sidecar"}, **open_kwargs)


@pytest.mark.parametrize("zip64", [False, True])
def test_members_inflated_while_streaming_are_adopted(tmp_path, zip64):
    archive = shapefile_zip(tmp_path, force_zip64=zip64)
    unzipper = Unzipper("combined-shapefile*.shp", tmp_path / "work", LIMITS)
    stream(archive, unzipper)
    path = unzipper.adopt(archive, tmp_path / "out")
    assert path == tmp_path / "out" / "combined-shapefile.shp"
    assert path.read_bytes() == SHP
    assert sorted(p.name for p in path.parent.iterdir()) == [
        ".complete", "combined-shapefile.dbf", "combined-shapefile.shp", "combined-shapefile.shx"]
    assert not unzipper.work.exists()
    # The usual path then finds the extraction complete.
    assert extract_member(archive, "combined-shapefile*.shp", tmp_path / "out", LIMITS) == path


def test_sizes_after_the_data_are_not_followed(tmp_path):
    buffer = io.BytesIO()  # a non-seekable writer puts sizes in data descriptors
    with zipfile.ZipFile(_Unseekable(buffer), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.gpkg", SHP)
    archive = tmp_path / "dd.zip"
    archive.write_bytes(buffer.getvalue())
    unzipper = Unzipper("*.gpkg", tmp_path / "work", LIMITS)
    stream(archive, unzipper)
    assert unzipper.adopt(archive, tmp_path / "out") is None
    assert extract_member(archive, "*.gpkg", tmp_path / "out", LIMITS).read_bytes() == SHP


def test_a_stream_that_differs_from_the_archive_is_not_adopted(tmp_path):
    archive = shapefile_zip(tmp_path)
    other = make_zip(tmp_path / "other.zip", {"dist/combined-shapefile.shp": b"x" * 1000})
    unzipper = Unzipper("combined-shapefile*.shp", tmp_path / "work", LIMITS)
    stream(archive, unzipper, other.read_bytes())
    assert unzipper.adopt(archive, tmp_path / "out") is None
    assert not (tmp_path / "out").exists() and not unzipper.work.exists()


def test_a_cut_or_garbled_stream_is_not_adopted(tmp_path):
    archive = shapefile_zip(tmp_path)
    data = archive.read_bytes()
    for bad in (data[: len(data) // 2], data[:5000] + b"\xff" * 5000 + data[10000:]):
        unzipper = Unzipper("combined-shapefile*.shp", tmp_path / "work", LIMITS)
        stream(archive, unzipper, bad)
        assert unzipper.adopt(archive, tmp_path / "out") is None
    assert not (tmp_path / "out").exists()


def test_a_refused_archive_is_not_adopted_and_the_usual_path_says_why(tmp_path):
    archive = make_zip(tmp_path / "slip.zip", {"../../evil.shp": SHP})
    unzipper = Unzipper("*.shp", tmp_path / "work", LIMITS)
    stream(archive, unzipper)
    assert unzipper.adopt(archive, tmp_path / "out") is None
    assert not list(tmp_path.glob("**/evil.shp"))


def test_a_killed_followers_work_is_removed_by_the_next_one_in_its_folder(tmp_path):
    """The follower names its own work directory and cleans up after one that died (a
    worker killed mid-download never ran its cleanup)."""
    archive = shapefile_zip(tmp_path)
    started: list[Unzipper] = []

    def start_and_die() -> None:  # another thread: a work directory of another name
        started.append(Unzipper("combined-shapefile*.shp", tmp_path / "cache", LIMITS))
        started[0].__enter__().feed(archive.read_bytes()[:70_000])
        started[0].close()  # its thread ends; its directory stays, as a kill would leave it

    died = threading.Thread(target=start_and_die)
    died.start()
    died.join()
    killed = started[0]
    assert killed.work.is_dir() and any(killed.work.iterdir())
    unzipper = Unzipper("combined-shapefile*.shp", tmp_path / "cache", LIMITS)
    assert unzipper.work != killed.work
    stream(archive, unzipper)
    assert not killed.work.exists()
    assert unzipper.adopt(archive, tmp_path / "out") is not None
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == []


class _Unseekable(io.RawIOBase):
    def __init__(self, inner: io.BytesIO) -> None:
        self.inner = inner

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        return self.inner.write(data)

    def flush(self) -> None:
        pass
