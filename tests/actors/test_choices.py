"""Issue 13, end to end through RabbitMQ and two worker processes: what the producer chose
is what every worker loads, whatever the workers' own environment says."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import psycopg
import pytest
import shapely

from devtools.testdata.mirror import mirror_path, timezone_url
from devtools.testdata.timezone import make_timezone_zip
from service.data_warnings import MISSING_FIELD
from tests.conftest import run_cli, staging_left
from tests.support import craft

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _upstream_restored(upstream_files):
    """What a test adds to the session's upstream files (other releases, variants,
    countries) is removed after it, so that other tests find upstream as it was."""
    root, _ = upstream_files
    before = set(root.rglob("*"))
    yield
    for path in sorted(set(root.rglob("*")) - before, reverse=True):
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()


def enqueue(settings, *args: str, **env: str) -> dict:
    done = run_cli("service.enqueue", *args, "--wait", "--json", settings=settings,
                   timeout=600, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_the_producers_release_is_loaded_not_the_workers(workers, settings, upstream_files):
    root, manifest = upstream_files
    other = make_timezone_zip(root / mirror_path(timezone_url("2026f")), zones=7,
                              vertices=5_000, seed=9)
    assert other.features != manifest.timezone.features
    # the workers run with GEOLOAD_TIMEZONE_RELEASE unset (2026c); the producer says 2026f
    final = enqueue(settings, "timezone", GEOLOAD_TIMEZONE_RELEASE="2026f")
    assert final["status"] == "succeeded"
    with psycopg.connect(settings.database_url) as db:
        count = db.execute("SELECT count(*) FROM timezone.timezones").fetchone()[0]
        release, url, options = db.execute(
            "SELECT release, source_url, options FROM geoload.loads WHERE run_id = %s",
            (final["run_id"],)).fetchone()
    assert count == other.features
    assert release == "2026f" and "/2026f/" in url and options["release"] == "2026f"


def test_levels_and_a_schema_of_ones_own_leave_other_loads_alone(workers, settings,
                                                                   upstream_files):
    _, manifest = upstream_files
    first = enqueue(settings, "gadm", "--levels", "0-1")
    mine = enqueue(settings, "gadm", "--levels", "0", "--schema", "mine")
    with psycopg.connect(settings.database_url) as db:
        found = {f"{s}.{t}" for s, t in db.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('gadm', 'mine')")}
        lookups = {t for t in found if t.endswith("_lookup")}  # each load's lookup table
        tables = found - lookups
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                  for t in sorted(tables)}
        live = db.execute("SELECT target_schema, run_id FROM geoload.live "
                          "WHERE dataset = 'gadm' ORDER BY 1").fetchall()
        schema = db.execute("SELECT target_schema FROM geoload.loads WHERE run_id = %s",
                            (mine["run_id"],)).fetchone()[0]
    assert tables == {"gadm.adm_0", "gadm.adm_1", "mine.adm_0"}
    assert lookups == {"gadm.gadm_lookup", "mine.gadm_lookup"}
    expected = manifest.gadm.features
    assert counts == {"gadm.adm_0": expected["ADM_0"], "gadm.adm_1": expected["ADM_1"],
                      "mine.adm_0": expected["ADM_0"]}
    assert live == [("", first["run_id"]), ("mine", mine["run_id"])]
    assert schema == "mine"
    shown = run_cli("service.status", mine["run_id"], settings=settings)
    assert "levels 0" in shown.stdout and "schema mine" in shown.stdout, shown.stdout


def test_two_countries_at_levels_0_to_2_one_of_them_only_to_level_1(workers, settings,
                                                                     upstream_files):
    from devtools.testdata.countries import make_country_gpkgs

    root, manifest = upstream_files
    counts = make_country_gpkgs(manifest.gadm.path, root, ["FRA", "BRA"], {"BRA": 1})
    assert "ADM_2" in counts["FRA"] and "ADM_2" not in counts["BRA"]
    final = enqueue(settings, "gadm", "--countries", "fra,BRA", "--levels", "0-2")
    assert final["status"] == "succeeded"
    with psycopg.connect(settings.database_url) as db:
        tables = sorted(t for (t,) in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'gadm'"))
        got = {level: dict(db.execute(
            f"SELECT gid_0, count(*) FROM gadm.adm_{level} GROUP BY gid_0").fetchall())  # noqa: S608
            for level in range(3)}
        parts = db.execute("SELECT part, p.sha256 IS NOT NULL FROM geoload.load_parts p "
                           "JOIN geoload.loads USING (load_id) WHERE run_id = %s ORDER BY part",
                           (final["run_id"],)).fetchall()
        fetched_by = db.execute(
            "SELECT count(DISTINCT part) FROM geoload.chunks JOIN geoload.loads "
            "USING (load_id) WHERE run_id = %s", (final["run_id"],)).fetchone()[0]
    assert tables == ["adm_0", "adm_1", "adm_2", "gadm_lookup"]
    for level in range(3):
        expected = {code: n[f"ADM_{level}"] for code, n in counts.items()
                    if f"ADM_{level}" in n}
        assert got[level] == expected, level
    assert parts == [("BRA", True), ("FRA", True)]
    assert fetched_by == 2
    # each country's file has a cache folder, and so a host lock, of its own
    assert {p.parent.name for p in settings.cache_dir.glob("gadm/*/gadm41_*.gpkg")} == {
        "FRA", "BRA"}


def test_an_unknown_country_code_is_a_usage_error_naming_the_closest(settings):
    done = run_cli("service.enqueue", "gadm", "--countries", "NPL,DZX", settings=settings)
    assert done.returncode == 2, done.stderr
    # one line, its hint once; "DZA" alone would match the hint's example (e.g. NPL,DZA)
    assert done.stderr.count("unknown country code 'DZX'") == 1, done.stderr
    assert done.stderr.count("What to do:") == 1 and done.stderr.count("did you mean") == 1
    assert "did you mean DZA" in done.stderr


def test_each_timezone_variant_loads_beside_the_default(workers, settings, upstream_files):
    from devtools.testdata.mirror import make_timezone_variants
    from service.catalog.timezone import VARIANTS

    root, manifest = upstream_files
    variants = make_timezone_variants(root, manifest.timezone_release)
    final = enqueue(settings, *VARIANTS)
    assert final["status"] == "succeeded"
    expected = {"timezone": manifest.timezone.tzids,
                **{name: made.tzids for name, made in variants.items()}}
    with psycopg.connect(settings.database_url) as db:
        for name, (_asset, table, *_rest) in VARIANTS.items():
            stored = sorted(t for (t,) in db.execute(
                f"SELECT tzid FROM timezone.{table}"))  # noqa: S608
            assert stored == sorted(expected[name]), name
        staging = db.execute("SELECT count(*) FROM pg_tables "
                             "WHERE schemaname = 'geoload_staging'").fetchone()[0]
    assert staging == 0


def test_an_unpinned_release_is_the_newest_on_github(workers, settings, upstream_files,
                                                     tmp_path):
    from tests.support.releases import github

    root, _ = upstream_files
    newest = make_timezone_zip(root / mirror_path(timezone_url("2026g")), zones=5,
                               vertices=4_000, seed=12)
    with github("2026g") as (api, asked):
        final = enqueue(settings, "timezone", GEOLOAD_TIMEZONE_RELEASE="",
                        GEOLOAD_GITHUB_API=api, GEOLOAD_CACHE_DIR=str(tmp_path))
    assert asked and final["status"] == "succeeded"
    with psycopg.connect(settings.database_url) as db:
        count = db.execute("SELECT count(*) FROM timezone.timezones").fetchone()[0]
        release = db.execute("SELECT release FROM geoload.loads WHERE run_id = %s",
                             (final["run_id"],)).fetchone()[0]
    assert (count, release) == (newest.features, "2026g")


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_of_ones_own_from_a_local_path_and_from_a_url(workers, settings, upstream_files,
                                                             upstream, tmp_path):
    root, _ = upstream_files
    mine = make_timezone_zip(tmp_path / "zones.zip", zones=9, vertices=6_000, seed=31)
    served = make_timezone_zip(root / "shared" / "zones.zip", zones=4, vertices=3_000, seed=32)
    by_path = enqueue(settings, "timezone", "--source", str(mine.path))
    after_path = _tzids(settings)
    url = f"{upstream.url.rstrip('/')}/shared/zones.zip"
    by_url = enqueue(settings, "timezone", "--source", url)
    assert (by_path["status"], by_url["status"]) == ("succeeded", "succeeded")
    assert after_path == sorted(mine.tzids)
    assert _tzids(settings) == sorted(served.tzids)
    with psycopg.connect(settings.database_url) as db:
        recorded = [db.execute("SELECT source_url, sha256, options->>'source' FROM geoload.loads "
                               "WHERE run_id = %s", (run["run_id"],)).fetchone()
                    for run in (by_path, by_url)]
    assert recorded == [(str(mine.path), _sha256(mine.path), str(mine.path)),
                        (url, _sha256(served.path), url)]


def _tzids(settings) -> list[str]:
    with psycopg.connect(settings.database_url) as db:
        return sorted(t for (t,) in db.execute("SELECT tzid FROM timezone.timezones"))


def test_a_path_a_worker_cant_read_fails_the_load_saying_why(workers, settings, tmp_path):
    missing = tmp_path / "not-shared" / "zones.zip"
    done = run_cli("service.enqueue", "timezone", "--source", str(missing), "--wait",
                   settings=settings, timeout=300)
    assert done.returncode == 1
    assert str(missing) in done.stderr and "readable" in done.stderr
    assert "every worker" in done.stderr


def test_a_source_is_for_one_dataset(settings, tmp_path):
    done = run_cli("service.enqueue", "gadm", "timezone", "--source", str(tmp_path / "x.zip"),
                   settings=settings)
    assert done.returncode == 2 and "exactly one dataset" in done.stderr


# --- --source files that differ from the catalog: upstream's drift rules apply ---------------

def _gadm_gpkg(manifest, folder) -> Path:
    """The session's GADM GeoPackage, extracted: what a user's own files are crafted from."""
    with zipfile.ZipFile(manifest.gadm.path) as zf:
        return Path(zf.extract(manifest.gadm.member, folder / "gpkg"))


def _gadm_tables(settings) -> dict[str, tuple[object, ...] | None]:
    with psycopg.connect(settings.database_url) as db:
        return {f"adm_{k}": db.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY fid), '')) "  # noqa: S608
            f"FROM gadm.adm_{k} t").fetchone() for k in range(6)}


def test_a_source_file_missing_a_non_key_field_loads_with_the_drift_warning(
        workers, settings, upstream_files, tmp_path):
    _, manifest = upstream_files
    mine = craft.craft_gadm(_gadm_gpkg(manifest, tmp_path), tmp_path / "mine.zip",
                            {"ADM_2": craft.drop_field("NAME_2")})
    final = enqueue(settings, "gadm", "--source", str(mine))
    assert final["status"] == "succeeded"
    with psycopg.connect(settings.database_url) as db:
        warnings, source = db.execute("SELECT warnings, source_url FROM geoload.loads "
                                      "WHERE run_id = %s", (final["run_id"],)).fetchone()
        named, rows = db.execute("SELECT count(name_2), count(*) FROM gadm.adm_2").fetchone()
    assert [(w["kind"], w["layer"], w["field"]) for w in warnings] == [
        (MISSING_FIELD, "ADM_2", "NAME_2")]
    assert source == str(mine)
    assert (named, rows) == (0, manifest.gadm.features["ADM_2"])


def test_a_strict_source_file_with_an_unloadable_feature_fails_and_keeps_the_old_data(
        workers, settings, upstream_files, tmp_path):
    _, manifest = upstream_files
    enqueue(settings, "gadm")
    before = _gadm_tables(settings)
    collapsed = shapely.MultiPolygon([shapely.Polygon([(0, 0), (1, 1), (2, 2), (0, 0)])])
    bad = craft.craft_gadm(_gadm_gpkg(manifest, tmp_path), tmp_path / "bad.zip",
                           {"ADM_3": craft.set_geometry(4, collapsed)})
    done = run_cli("service.enqueue", "gadm", "--source", str(bad), "--strict", "--wait",
                   settings=settings, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    assert ("layer 'ADM_3': 1 feature(s) has no polygonal part even after make_valid (fid 5)"
            in done.stderr), done.stderr[-3000:]
    assert _gadm_tables(settings) == before
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        assert staging_left(db) == 0  # dropped by the failure path, which a chunk may trail
        assert db.execute("SELECT status, strict, error_step, source_url FROM geoload.loads "
                          "ORDER BY load_id DESC LIMIT 1").fetchone() == (
            "failed", True, "load_chunk", str(bad))
