"""``enqueue gadm timezone`` through RabbitMQ, two worker processes, Redis and PostGIS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
import redis
from pyogrio import raw

from tests.conftest import ConcurrentReader, new_upstream_version, table_counts
from tests.data import gadm41_fields
from tests.support.runs import enqueue_and_wait

pytestmark = pytest.mark.e2e

GADM_TABLES = [f"gadm.adm_{i}" for i in range(6)]


def source_layers(upstream_root: Path) -> dict[str, Path]:
    """Extracted source files, read independently of geoload's reader."""
    import zipfile

    out = {}
    for zpath, key in (
        (upstream_root / "gadm/gadm4.1/gadm_410-levels.zip", "gadm"),
        (next(upstream_root.glob("evansiroky/**/timezones-with-oceans.shapefile.zip")),
         "timezone"),
    ):
        target = upstream_root.parent / f"truth-{key}"
        with zipfile.ZipFile(zpath) as zf:
            zf.extractall(target)
        out[key] = next(p for p in target.rglob("*") if p.suffix in (".gpkg", ".shp"))
    return out


def read_source(path: Path, layer: str | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    meta, fids, _geom, fields = raw.read(path, layer=layer, read_geometry=False,
                                         return_fids=True)
    return fids, {name.lower(): values for name, values in zip(meta["fields"], fields)}


def test_gadm_and_timezone_load_completely_and_correctly(workers, settings, upstream_files):
    root, manifest = upstream_files
    final = enqueue_and_wait(settings, "gadm", "timezone")
    assert final["status"] == "succeeded"
    truth = source_layers(root)
    with psycopg.connect(settings.database_url) as db:
        # every table present, with the source's feature count; the source has exactly
        # GADM 4.1's published fields, and every one is a column, in GADM's order
        published = gadm41_fields()
        for i, table in enumerate(GADM_TABLES):
            fids, fields = read_source(truth["gadm"], f"ADM_{i}")
            assert list(fields) == [name.lower() for name in published[f"ADM_{i}"]]
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == len(fids)
            columns = [r[0] for r in db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'gadm' "
                "AND table_name = %s ORDER BY ordinal_position", (f"adm_{i}",)).fetchall()]
            assert columns == ["fid", *fields, "geom"]
        tz_fids, tz_fields = read_source(truth["timezone"], None)
        assert db.execute("SELECT count(*) FROM timezone.timezones").fetchone()[0] == len(tz_fids)
        # every geometry a valid MultiPolygon in 4326
        for table in [*GADM_TABLES, "timezone.timezones"]:
            bad = db.execute(
                f"SELECT count(*) FROM {table} WHERE geom IS NULL OR NOT ST_IsValid(geom) "
                "OR GeometryType(geom) <> 'MULTIPOLYGON' OR ST_SRID(geom) <> 4326").fetchone()[0]
            assert bad == 0, table
        # attributes equal the source's, on a sample, non-Latin names included
        _check_gadm_sample(db, truth["gadm"])
        stored = dict(db.execute("SELECT tzid, tzid FROM timezone.timezones").fetchall())
        assert set(stored) == set(tz_fields["tzid"])
        assert any(not name.isascii() for name in stored)
        # parent keys join, and the join is an index lookup
        for level in range(1, 6):
            orphans = db.execute(
                f"SELECT count(*) FROM gadm.adm_{level} c LEFT JOIN gadm.adm_{level - 1} p "
                f"USING (gid_{level - 1}) WHERE p.gid_{level - 1} IS NULL").fetchone()[0]
            assert orphans == 0, level
        db.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in db.execute(
            "EXPLAIN SELECT * FROM gadm.adm_2 JOIN gadm.adm_1 USING (gid_1) "
            "WHERE gadm.adm_2.gid_2 = 'X'").fetchall())
        assert "adm_1_gid_1_idx" in plan
    _check_provenance(settings, final["run_id"], manifest)


def _check_gadm_sample(db: psycopg.Connection, gpkg: Path) -> None:
    fids, fields = read_source(gpkg, "ADM_3")
    rng = np.random.default_rng(7)
    for row in rng.choice(len(fids), size=min(40, len(fids)), replace=False):
        names = list(fields)
        got = db.execute(f"SELECT {', '.join(names)} FROM gadm.adm_3 WHERE fid = %s",
                         (int(fids[row]),)).fetchone()
        assert got is not None
        assert list(got) == [fields[n][row] for n in names]
    non_latin = db.execute("SELECT count(*) FROM gadm.adm_3 WHERE name_3 ~ '[^\\x01-\\x7F]' "
                           "OR nl_name_3 ~ '[^\\x01-\\x7F]'").fetchone()[0]
    assert non_latin > 0


def _check_provenance(settings, run_id: str, manifest) -> None:
    with psycopg.connect(settings.database_url) as db:
        rows = db.execute("SELECT dataset, status, sha256, bytes, layers, source_url "
                          "FROM geoload.loads WHERE run_id = %s ORDER BY dataset",
                          (run_id,)).fetchall()
        warnings = db.execute("SELECT dataset, warnings FROM geoload.loads WHERE run_id = %s "
                              "ORDER BY dataset", (run_id,)).fetchall()
        workers = db.execute(
            "SELECT count(DISTINCT worker) FROM geoload.chunks JOIN geoload.loads USING (load_id) "
            "WHERE run_id = %s AND dataset = 'gadm'", (run_id,)).fetchone()[0]
    assert [r[0] for r in rows] == ["gadm", "timezone"]
    assert warnings == [("gadm", []), ("timezone", [])]  # the schema GADM publishes: no drift
    for _dataset, status, sha256, size, layers, url in rows:
        assert status == "published" and len(sha256) == 64 and size > 0
        assert url.startswith(settings.mirror)
        for counts in layers.values():
            assert counts["loaded"] == counts["source"] and counts["dropped"] == 0
    assert sum(c["repaired"] for c in rows[0][4].values()) > 0
    # the parallelism is real: chunks of one dataset ran in more than one worker process
    assert workers >= 2
    results = _chunk_results(settings, run_id)
    assert len({r["worker"] for r in results if r.get("dataset") == "gadm"}) >= 2


def _chunk_results(settings, run_id: str) -> list[dict]:
    """Chunk results as Dramatiq's Results middleware stored them in Redis."""
    client = redis.Redis.from_url(settings.redis_url)
    found = []
    for key in client.scan_iter("dramatiq-results:*", count=1000):
        for value in client.lrange(key, 0, -1) if client.type(key) == b"list" else [
                client.get(key)]:
            try:
                result = json.loads(value)
            except (TypeError, ValueError):
                continue
            if isinstance(result, dict) and result.get("run_id") == run_id and "chunk_no" in result:
                found.append(result)
    return found


def test_rerun_replaces_the_first_atomically(workers, settings, upstream_files, tmp_path):
    root, _ = upstream_files
    enqueue_and_wait(settings, "gadm", "timezone")
    tables = ["gadm.adm_3", "timezone.timezones"]
    old = table_counts(settings, tables)
    with new_upstream_version(root, tmp_path), ConcurrentReader(settings, tables) as reader:
        enqueue_and_wait(settings, "gadm", "timezone")
    new = table_counts(settings, tables)
    with psycopg.connect(settings.database_url) as db:
        leftovers = db.execute("SELECT count(*) FROM pg_tables "
                               "WHERE schemaname = 'geoload_staging'").fetchone()[0]
    assert new != old
    assert not reader.errors
    for table in tables:
        assert reader.seen[table] <= {old[table], new[table]}, table
        assert reader.seen[table], table
    assert leftovers == 0
