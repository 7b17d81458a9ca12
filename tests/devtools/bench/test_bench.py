"""``python -m devtools.bench`` end to end on tiny generated files: every peer, one JSON table."""

import json
import os
import statistics
import zipfile

import psycopg
import pytest
from psycopg import sql

from devtools.bench.profile.stages import BY_FILE, BY_LINE
from devtools.bench.report import Row, paired_ratio
from tests.conftest import have, run_cli

WAYS = {"geoload 1 worker", "geoload 1 worker + lookup", "raw binary COPY",
        "GEOS validity alone (CPU s)"}
STAGES = {name for _, name in (*BY_LINE, *BY_FILE)}
#: The ways a user would pick instead, and the datasets each applies to.
PEERS = {"user's script (curl+unzip+ogr2ogr+indexes)": ("timezone", "gadm"),
         "shp2pgsql -D | psql + repair": ("timezone",),
         "geopandas to_postgis": ("timezone", "gadm"),
         "DuckDB spatial -> PostGIS": ("timezone", "gadm")}


def test_the_benchmark_runs_every_peer_and_writes_its_table(settings, bench_db, tmp_path):
    out = tmp_path / "bench.json"
    done = run_cli("devtools.bench", "--size", "tiny", "--runs", "2", "--workers", "1",
                   "--database", bench_db, "--data", str(tmp_path / "data"), "--json", str(out),
                   "--profile", "timezone", "gadm", settings=settings, timeout=600,
                   PATH=os.environ["PATH"])
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    for dataset in ("timezone", "gadm"):
        mine = {r["way"]: r for r in rows if r["dataset"] == dataset}
        assert set(mine) >= WAYS, sorted(mine)
        for way, datasets in PEERS.items():
            if dataset not in datasets:
                assert way not in mine
                continue
            # Ran in both rounds and matched geoload's result, or was skipped with a note
            # (CI installs every peer: .ci/setup).
            peer = mine[way]
            assert (len(peer["runs_s"]) == 2 and peer["note"] is None
                    or peer["note"].startswith("skipped: ")), peer
        if have("ogr2ogr"):
            ogr = mine["ogr2ogr"]["median_s"]
            assert ogr > 0 and mine["ogr2ogr"]["vs_ogr2ogr"] == 1.0
            ours = mine["geoload 1 worker"]
            rounds = zip(ours["runs_s"], mine["ogr2ogr"]["runs_s"], strict=True)
            assert ours["vs_ogr2ogr"] == pytest.approx(
                statistics.median(a / b for a, b in rounds), rel=0.02)
        floor = mine["raw binary COPY"]
        assert floor["vs_copy_floor"] == 1.0 and floor["median_s"] > 0
        assert all(len(r["runs_s"]) == 2 and r["median_s"] > 0 for r in mine.values()
                   if not r["note"])
        assert mine["geoload 1 worker"]["peak_rss_mb"] > 50
        # The machine's busy CPU: measured for the loads, not for the CPU-time row.
        loads = ["geoload 1 worker", "raw binary COPY", *(["ogr2ogr"] if have("ogr2ogr") else [])]
        for way in loads:
            assert mine[way]["cpu_s"] > 0, way
            # its own processes' and backends' CPU: not more than the machine's (a tiny
            # COPY can take less than one 10 ms clock tick)
            assert 0 <= mine[way]["own_cpu_s"] <= mine[way]["cpu_s"] + 0.05, way
        assert mine["geoload 1 worker"]["own_cpu_s"] > 0
        # The same load with its lookup table cut does more work than without.
        assert mine["geoload 1 worker + lookup"]["own_cpu_s"] > 0
        assert mine["GEOS validity alone (CPU s)"]["cpu_s"] is None
    # --profile: one more load per dataset, its CPU split by stage on both sides.
    profiles = {p["dataset"]: p for p in json.loads(out.read_text())["profiles"]}
    assert set(profiles) == {"timezone", "gadm"}
    for found in profiles.values():
        assert sum(found["workers_cpu_s"].values()) > 0 and found["seconds"] > 0
        assert set(found["workers_cpu_s"]) <= {*STAGES, "profiler", "other"}
        assert found["server_cpu_s"].get("COPY (server)", 0) >= 0
    assert "PostgreSQL backends:" in done.stdout
    assert "geoload 1 worker" in done.stdout and "vs ogr2ogr" in done.stdout
    assert "CPU s" in done.stdout
    # What geoload loaded is what the floor copied (the last dataset's floor is kept).
    url = settings.database_url.rsplit("/", 1)[0] + "/" + bench_db
    with psycopg.connect(url) as conn:
        for level in range(6):
            count = sql.SQL("SELECT count(*) FROM {}")
            published = conn.execute(count.format(sql.Identifier("gadm", f"adm_{level}"))
                                     ).fetchone()
            floor_rows = conn.execute(count.format(
                sql.Identifier("bench_copy_floor", f"adm_{level}"))).fetchone()
            assert published == floor_rows and published[0] > 0


def test_ratios_are_taken_within_rounds_so_a_slow_round_does_not_skew_them():
    ours = Row("gadm", "geoload 1 worker", [1.0, 10.0, 3.0])
    ogr = Row("gadm", "ogr2ogr", [2.0, 20.0, 30.0])  # the third round ran on a slow machine
    assert paired_ratio(ours, ogr) == 0.5
    assert ours.median / ogr.median == 0.15  # what the ratio of medians would have said
    assert paired_ratio(ours, Row("gadm", "ogr2ogr", [6.0])) == 0.5  # unpaired: medians


def test_the_scale_run_reports_time_each_workers_peak_and_the_cache_on_disk(settings, bench_db,
                                                                           tmp_path):
    """``python -m devtools.bench.scale`` as the README's real-scale figures are made, on the
    tiny size: the world size takes minutes and is run by hand."""
    out = tmp_path / "scale.json"
    done = run_cli("devtools.bench.scale", "--size", "tiny", "--workers", "2", "--database",
                   bench_db, "--data", str(tmp_path / "data"), "--json", str(out),
                   settings=settings, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    zipped = next((tmp_path / "data").rglob("gadm_410-levels.zip"))
    assert figures["features"] == sum(figures["features_per_layer"].values()) > 0
    assert len(figures["peak_rss_mb"]) == 2 and all(50 < mb < 400 for mb in figures["peak_rss_mb"])
    # the cache held the zip and the GeoPackage inflated from it
    with zipfile.ZipFile(zipped) as zf:
        inflated = zf.infolist()[0].file_size
    assert figures["cache_bytes"] >= zipped.stat().st_size + inflated
    assert 0 < figures["seconds"] <= figures["wall_seconds"]
    assert "peak RSS per worker" in done.stdout and "cache disk used" in done.stdout
