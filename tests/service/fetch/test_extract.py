import zipfile
from pathlib import Path

import pytest

from service.errors import BadSource
from service.fetch.unzip import ArchiveLimits, extract_member
from tests.support.craft import deflate_padded, understate_size, zip_files
from tests.support.probe import measure

LIMITS = ArchiveLimits(max_total_bytes=50_000_000, max_ratio=100)


def make_zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extracts_the_member_and_its_shapefile_sidecars(tmp_path):
    archive = make_zip(tmp_path / "tz.zip", {
        "dist/combined-shapefile.shp": b"shp", "dist/combined-shapefile.shx": b"shx",
        "dist/combined-shapefile.dbf": b"dbf", "dist/combined-shapefile.prj": b"prj",
        "README.txt": b"hello"})
    path = extract_member(archive, "combined-shapefile*.shp", tmp_path / "out", LIMITS)
    assert path == tmp_path / "out" / "combined-shapefile.shp"
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith(".")) == [
        "combined-shapefile.dbf", "combined-shapefile.prj", "combined-shapefile.shp",
        "combined-shapefile.shx"]
    # A second call finds it complete and does not extract again.
    assert extract_member(archive, "combined-shapefile*.shp", tmp_path / "out", LIMITS) == path


def test_missing_member_lists_what_is_there(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"other.gpkg.txt": b"x"})
    with pytest.raises(BadSource, match=r"no member matches '\*\.gpkg'.*other\.gpkg\.txt"):
        extract_member(archive, "*.gpkg", tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_zip_slip_is_refused(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"../../etc/x.gpkg": b"x"})
    with pytest.raises(BadSource, match="zip-slip"):
        extract_member(archive, "*.gpkg", tmp_path / "out", LIMITS)


def test_zip_bomb_is_refused_by_ratio_and_by_declared_size(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", {"x.gpkg": b"\0" * 20_000_000})
    with pytest.raises(BadSource, match="zip bomb"):
        extract_member(bomb, "*.gpkg", tmp_path / "out", LIMITS)
    small = ArchiveLimits(max_total_bytes=1000, max_ratio=10_000)
    with pytest.raises(BadSource, match="GEOLOAD_MAX_EXTRACT_BYTES"):
        extract_member(bomb, "*.gpkg", tmp_path / "out", small)


def test_corrupt_member_fails_its_crc(tmp_path):
    archive = make_zip(tmp_path / "c.zip", {"x.gpkg": bytes(range(256)) * 400},
                       method=zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    data[200] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(BadSource, match="corrupt"):
        extract_member(archive, "*.gpkg", tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_not_a_zip_is_corrupt(tmp_path):
    archive = tmp_path / "page.zip"
    archive.write_text("<html>Service Unavailable</html>")
    with pytest.raises(BadSource, match="corrupt"):
        extract_member(archive, "*.gpkg", tmp_path / "out", LIMITS)


# --- zip bombs: the limits hold while inflating, measured on disk and in memory ------------

MiB = 1 << 20
#: The shipped defaults: only the ratio (200:1) stands between a bomb and the disk.
DEFAULTS = (40_000_000_000, 200)


def test_an_honest_bomb_is_refused_before_the_follower_writes_it(tmp_path):
    """A 48 KB zip of 50 MB of zeros: its local header says so, and the follower inflating
    during the download wrote all 50 MB before the central directory refused it."""
    bomb = zip_files(tmp_path / "bomb.zip", {"x.gpkg": b"\0" * 50_000_000})
    assert bomb.stat().st_size < 60_000
    cost = measure("stream", bomb, "*.gpkg", tmp_path / "work", *DEFAULTS)
    assert cost.error and "beyond the 200:1 limit (zip bomb?)" in cost.error
    assert cost.written < MiB
    assert cost.peak_growth < 16 * MiB
    assert not (tmp_path / "work" / "out").exists()


@pytest.mark.parametrize("mode", ["stream", "extract"])
def test_a_bomb_understating_its_size_costs_neither_memory_nor_disk(tmp_path, mode):
    """200 MB of zeros declared as 100 kB: one 1 MiB read came back as 200 MB in one call."""
    bomb = understate_size(zip_files(tmp_path / "bomb.zip", {"x.gpkg": b"\0" * 200_000_000}),
                           declared=100_000)
    cost = measure(mode, bomb, "*.gpkg", tmp_path / "work", *DEFAULTS)
    assert cost.error and "unpacks beyond its declared 100,000 bytes" in cost.error
    assert cost.written < 2 * MiB
    assert cost.peak_growth < 16 * MiB, f"peak RSS grew {cost.peak_growth / MiB:.0f} MiB"


@pytest.mark.parametrize("mode", ["stream", "extract"])
def test_a_bomb_the_declared_ratio_cannot_see_is_stopped_while_inflating(tmp_path, mode):
    """Sizes that look like 138:1, but the deflate stream ends early: 40 MB come out of
    39 kB. Only the running counts see it; it used to be extracted whole."""
    bomb = deflate_padded(tmp_path / "bomb.zip", "x.gpkg", b"\0" * 40_000_000, padding=250_000)
    with zipfile.ZipFile(bomb) as zf:
        (info,) = zf.infolist()
    assert info.file_size / info.compress_size < DEFAULTS[1]
    cost = measure(mode, bomb, "*.gpkg", tmp_path / "work", *DEFAULTS)
    assert cost.error and "beyond the 200:1 limit (zip bomb?)" in cost.error
    assert cost.written < 3 * MiB
    assert cost.peak_growth < 16 * MiB
    assert not (tmp_path / "work" / "out").exists()

