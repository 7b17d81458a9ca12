"""The generated GADM and timezone files look like upstream's where a loader can tell."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import pyogrio.raw
import pytest
import shapely

from devtools.testdata.gadm import (
    FAMOUS_NAMES,
    LAYERS,
    REAL_COUNTS,
    level_counts,
    make_gadm_levels_zip,
)
from devtools.testdata.mirror import (
    GADM_URL,
    SIZES,
    Manifest,
    generate,
    manifest_path,
    mirror_path,
    timezone_url,
)
from devtools.testdata.timezone import MEMBERS, STEM
from tests.conftest import ROOT
from tests.data import gadm41_fields


def read_layer(path: Path | str, layer: str | None = None) -> tuple[pa.Table, np.ndarray]:
    """Attributes (with fids) and shapely geometries of one layer."""
    meta, table = pyogrio.raw.read_arrow(path, layer=layer, return_fids=True)
    geom_col = meta["geometry_name"] or "wkb_geometry"
    geoms = shapely.from_wkb(table.column(geom_col).to_numpy(zero_copy_only=False))
    return table.drop_columns([geom_col]), geoms


# --- layout and manifest -------------------------------------------------------------------


def test_files_sit_at_upstream_url_paths(tiny: Manifest) -> None:
    gadm = tiny.root / "gadm/gadm4.1/gadm_410-levels.zip"
    tz = (tiny.root / "evansiroky/timezone-boundary-builder/releases/download/2026c"
          / "timezones-with-oceans.shapefile.zip")
    assert tiny.gadm.path == gadm and gadm.is_file()
    assert tiny.timezone.path == tz and tz.is_file()
    assert manifest_path(gadm).is_file() and manifest_path(tz).is_file()
    assert tiny.urls[GADM_URL] == "gadm/gadm4.1/gadm_410-levels.zip"
    assert tiny.mirror_url("http://127.0.0.1:9/", timezone_url("2026c")) == (
        "http://127.0.0.1:9/" + mirror_path(timezone_url("2026c")))
    with zipfile.ZipFile(gadm) as zf:
        assert [i.filename for i in zf.infolist()] == ["gadm_410-levels.gpkg"]
        assert zf.infolist()[0].compress_type == zipfile.ZIP_DEFLATED
    assert tiny.gadm.size == gadm.stat().st_size


def test_generate_reuses_cached_files(tiny: Manifest) -> None:
    before = tiny.gadm.path.stat().st_mtime_ns, tiny.timezone.path.stat().st_mtime_ns
    again = generate(tiny.root, size="tiny")
    assert (again.gadm.path.stat().st_mtime_ns, again.timezone.path.stat().st_mtime_ns) == before
    assert again.gadm.sha256 == tiny.gadm.sha256
    assert again.timezone.tzids == tiny.timezone.tzids


def test_unknown_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown size"):
        generate(tmp_path, size="huge")


def test_level_counts_follow_gadm_proportions() -> None:
    assert level_counts(sum(REAL_COUNTS)) == REAL_COUNTS
    counts = level_counts(150_000)
    assert sum(counts) == 150_000
    assert counts[4] > counts[3] > counts[5] > counts[2] > counts[1] > counts[0]
    assert all(c >= 1 for c in level_counts(6))
    assert level_counts(300)[0] > 1  # several countries even when tiny


def test_world_size_has_gadm41s_counts_and_vertex_density(tmp_path: Path) -> None:
    """The world size itself takes minutes: its density is measured per level on a small
    file made with the same vertex scale, then weighed by GADM's real level counts."""
    world = SIZES["world"]
    assert level_counts(world.features) == REAL_COUNTS == (263, 3662, 47217, 144193, 153410,
                                                           51427)
    small = make_gadm_levels_zip(tmp_path / "g.zip", features=4000,
                                 vertex_scale=world.vertex_scale)
    per_level = [small.vertices[layer] / small.features[layer] for layer in LAYERS]
    density = sum(v * n for v, n in zip(per_level, REAL_COUNTS)) / sum(REAL_COUNTS)
    assert density >= 150, per_level


# --- GADM --------------------------------------------------------------------------------


def test_gadm_has_six_multipolygon_layers_in_4326(tiny: Manifest, tiny_gpkg: Path) -> None:
    layers = pyogrio.list_layers(tiny_gpkg)
    assert [tuple(row) for row in layers] == [(name, "MultiPolygon") for name in LAYERS]
    for name in LAYERS:
        info = pyogrio.read_info(tiny_gpkg, layer=name)
        assert info["crs"] == "EPSG:4326"
        assert info["features"] == tiny.gadm.features[name] >= 1
    assert 250 <= tiny.gadm.total_features <= 350


@pytest.mark.parametrize("level", range(6))
def test_gadm_fields_and_gids_look_like_gadm41(tiny_gpkg: Path, level: int) -> None:
    table, geoms = read_layer(tiny_gpkg, LAYERS[level])
    assert table.column_names == ["fid", *gadm41_fields()[LAYERS[level]]]
    assert all(pa.types.is_string(t) for t in table.schema.types[1:])
    fids = table.column("fid").to_pylist()
    assert fids == list(range(1, len(fids) + 1))  # GeoPackage fids are 1..N per layer
    assert set(shapely.get_type_id(geoms)) == {shapely.GeometryType.MULTIPOLYGON}
    gids = table.column(f"GID_{level}").to_pylist()
    assert len(set(gids)) == len(gids)
    pattern = re.compile(r"^[A-Z][A-Z0-9]{2}" + r"\.\d+" * level + ("_1" if level else "") + "$")
    assert all(pattern.match(gid) for gid in gids), gids[:5]
    for k in range(level):
        for own, ancestor in zip(gids, table.column(f"GID_{k}").to_pylist(), strict=True):
            assert own.startswith(ancestor.removesuffix("_1") + ".")


@pytest.mark.parametrize("level", [2, 3])
def test_ancestor_nl_names_repeat_the_ancestors_own(tiny_gpkg: Path, level: int) -> None:
    children = read_layer(tiny_gpkg, LAYERS[level])[0]
    for j in range(1, level):
        ancestors = read_layer(tiny_gpkg, LAYERS[j])[0]
        own = dict(zip(ancestors.column(f"GID_{j}").to_pylist(),
                       ancestors.column(f"NL_NAME_{j}").to_pylist(), strict=True))
        pairs = zip(children.column(f"GID_{j}").to_pylist(),
                    children.column(f"NL_NAME_{j}").to_pylist(), strict=True)
        assert all(own[gid] == nl_name for gid, nl_name in pairs)


@pytest.mark.parametrize("level", range(1, 6))
def test_children_lie_inside_their_parents(tiny_gpkg: Path, level: int) -> None:
    parents, parent_geoms = read_layer(tiny_gpkg, LAYERS[level - 1])
    children, child_geoms = read_layer(tiny_gpkg, LAYERS[level])
    by_gid = dict(zip(parents.column(f"GID_{level - 1}").to_pylist(),
                      shapely.make_valid(parent_geoms), strict=True))
    sample = np.random.default_rng(level).choice(len(children), min(40, len(children)), False)
    gids = children.column(f"GID_{level - 1}").to_pylist()
    for i in sample:
        parent = by_gid[gids[i]]  # KeyError: orphan
        assert parent.contains(shapely.make_valid(child_geoms[i])), gids[i]


def test_adm5_exists_under_some_countries_only(tiny_gpkg: Path) -> None:
    countries = set(read_layer(tiny_gpkg, "ADM_0")[0].column("GID_0").to_pylist())
    with_adm5 = set(read_layer(tiny_gpkg, "ADM_5")[0].column("GID_0").to_pylist())
    assert with_adm5 and with_adm5 < countries


def _scripts(text: str) -> set[str]:
    return {unicodedata.name(ch, "?").split()[0] for ch in text if not ch.isascii()}


def test_names_in_many_scripts_round_trip_with_nulls(tiny_gpkg: Path) -> None:
    names: set[str] = set()
    nl_names: list[str | None] = []
    varnames: list[str | None] = []
    for level in range(1, 6):
        table, _ = read_layer(tiny_gpkg, LAYERS[level])
        names |= set(table.column(f"NAME_{level}").to_pylist())
        if level <= 3:  # GADM 4.1 has NL_NAME up to level 3, VARNAME up to 4
            nl_names += table.column(f"NL_NAME_{level}").to_pylist()
        if level <= 4:
            varnames += table.column(f"VARNAME_{level}").to_pylist()
    assert set(FAMOUS_NAMES) <= names  # byte-exact, astral-plane character included
    scripts = set().union(*(_scripts(n) for n in names))
    assert {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "DEVANAGARI", "CJK", "HANGUL"} <= scripts
    assert 0 < nl_names.count(None) < len(nl_names)
    assert any(n is not None and not n.isascii() for n in nl_names)
    assert varnames.count(None) > len(varnames) / 2
    assert any(v is not None and "|" in v for v in varnames)
    countries = read_layer(tiny_gpkg, "ADM_0")[0].column("COUNTRY").to_pylist()
    assert all(c for c in countries)


def test_gadm_geometry_mix_matches_manifest(tiny: Manifest, tiny_gpkg: Path) -> None:
    multipart = holes = 0
    means = []
    for level, layer in enumerate(LAYERS):
        _, geoms = read_layer(tiny_gpkg, layer)
        invalid = ~shapely.is_valid(geoms)
        assert int(invalid.sum()) == tiny.gadm.invalid[layer]
        if level >= 1:
            assert invalid.sum() >= 1, layer
        assert shapely.is_valid(shapely.make_valid(geoms)).all()
        coords = shapely.get_num_coordinates(geoms)
        assert int(coords.sum()) == tiny.gadm.vertices[layer]
        means.append(coords.mean())
        parts = shapely.get_parts(geoms)
        multipart += int((shapely.get_num_geometries(geoms) > 1).sum())
        holes += int((shapely.get_num_interior_rings(parts) > 0).sum())
        assert int((shapely.get_num_geometries(geoms) > 1).sum()) == tiny.gadm.multipart[layer]
    assert multipart > 0 and holes > 0
    assert means[0] > 1000 and means[0] > means[2] > means[5]  # ADM_0 dense, leaves coarse


def test_gadm_bounds_stay_on_earth(tiny_gpkg: Path) -> None:
    _, geoms = read_layer(tiny_gpkg, "ADM_0")
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    assert x0 >= -180 and x1 <= 180 and y0 >= -85 and y1 <= 85
    assert x1 - x0 > 90 or len(geoms) < 3  # countries spread over the world


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = make_gadm_levels_zip(tmp_path / "a" / "g.zip", features=120, seed=3)
    b = make_gadm_levels_zip(tmp_path / "b" / "g.zip", features=120, seed=3)
    c = make_gadm_levels_zip(tmp_path / "c" / "g.zip", features=120, seed=4)
    assert a.sha256 == b.sha256 != c.sha256
    assert a.invalid["ADM_1"] >= 1  # features >= 100: at least one invalid per level >= 1
    assert not list((tmp_path / "a").glob(".gadm-*"))  # temporary GeoPackage removed


# --- timezone ----------------------------------------------------------------------------


def test_timezone_zip_holds_a_utf8_shapefile(tiny: Manifest) -> None:
    with zipfile.ZipFile(tiny.timezone.path) as zf:
        assert sorted(zf.namelist()) == sorted(MEMBERS)
        assert zf.read(f"{STEM}.cpg").decode().strip() == "UTF-8"
        assert b"WGS" in zf.read(f"{STEM}.prj")
    info = pyogrio.read_info(f"/vsizip/{tiny.timezone.path}")
    assert list(info["fields"]) == ["tzid"] and info["encoding"] == "UTF-8"
    assert info["features"] == tiny.timezone.features == 12


def test_timezone_contents_match_manifest(tiny: Manifest) -> None:
    m = tiny.timezone
    table, geoms = read_layer(f"/vsizip/{m.path}")
    assert table.column(0).to_pylist() == list(range(m.features))  # shapefile fids 0..N-1
    tzids = table.column("tzid").to_pylist()
    assert tzids == m.tzids and len(set(tzids)) == len(tzids)
    assert {"America/São_Paulo", "Europe/Zürich", "Asia/東京"} <= set(tzids)
    assert any(t.startswith("Etc/GMT") for t in tzids)
    kinds = Counter(shapely.get_type_id(geoms).tolist())
    assert kinds[shapely.GeometryType.POLYGON] == m.polygons > 0
    assert kinds[shapely.GeometryType.MULTIPOLYGON] == m.multipolygons > 0
    assert int((~shapely.is_valid(geoms)).sum()) == m.invalid >= 2
    assert shapely.is_valid(shapely.make_valid(geoms)).all()
    first_parts = shapely.get_geometry(geoms, 0)
    assert int((shapely.get_num_interior_rings(first_parts) > 0).sum()) == m.holes > 0
    coords = shapely.get_num_coordinates(geoms)
    assert int(coords.sum()) == m.vertices
    assert abs(m.vertices - 20_000) < 2_000
    assert coords.max() > 5 * np.median(coords)  # very uneven, like real zones


def test_timezone_pick_is_unique_even_beyond_the_list(tmp_path: Path) -> None:
    from devtools.testdata.timezone import pick_tzids

    many = pick_tzids(600, np.random.default_rng(1))
    assert len(set(many)) == 600 and "Asia/東京" in many


# --- CLI ---------------------------------------------------------------------------------


def test_cli_generate_prints_what_it_did(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "devtools.testdata", "generate",
                           str(tmp_path), "--size", "tiny"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "gadm_410-levels.zip" in done.stdout and "sha256" in done.stdout
    assert (tmp_path / "gadm/gadm4.1/gadm_410-levels.zip").is_file()


def test_vertex_scale_multiplies_vertices(tmp_path: Path) -> None:
    one = make_gadm_levels_zip(tmp_path / "1" / "g.zip", features=60, vertex_scale=1.0)
    two = make_gadm_levels_zip(tmp_path / "2" / "g.zip", features=60, vertex_scale=2.0)
    assert one.features == two.features
    assert 1.7 < sum(two.vertices.values()) / sum(one.vertices.values()) < 2.3


def test_country_files_are_shaped_like_gadm41s_per_country_geopackages(
        tiny: Manifest, tiny_gpkg: Path, tmp_path: Path) -> None:
    """../shared/NOTES.md: ``gpkg/gadm41_{ISO3}.gpkg``, not zipped, layers ``ADM_ADM_0`` …
    ``ADM_ADM_k`` (k the country's deepest level) with the world layers' fields."""
    from devtools.testdata.countries import make_country_gpkgs

    first, second = sorted(set(read_layer(tiny_gpkg, "ADM_0")[0].column("GID_0").to_pylist()))[:2]
    make_country_gpkgs(tiny.gadm.path, tmp_path, [first, second], deepest={second: 1})
    for code, deepest in ((first, None), (second, 1)):
        path = tmp_path / f"gadm/gadm4.1/gpkg/gadm41_{code}.gpkg"  # upstream URL's path
        assert path.is_file() and not zipfile.is_zipfile(path)
        names = [name for name, _ in pyogrio.list_layers(path)]
        assert names == [f"ADM_ADM_{k}" for k in range(len(names))]
        assert deepest is None or len(names) <= deepest + 1  # k: its own deepest level
        for k, name in enumerate(names):
            table, geoms = read_layer(path, name)
            assert table.column_names == ["fid", *gadm41_fields()[f"ADM_{k}"]]
            assert set(table.column("GID_0").to_pylist()) == {code}
            assert len(geoms) > 0
