import zipfile
from pathlib import Path

import pytest

from service.archive import ArchiveLimits, extract_member
from service.errors import BadSource

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
