"""A chunk's dropped features are recorded with its rows: duplicates never count them twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import psycopg
import shapely

from devtools.testdata.mirror import GADM_URL, mirror_path
from devtools.testdata.server import serve
from service.data_warnings import MAX_LISTED
from service.pipeline.messages import CHUNK, FETCH, PLAN, Next
from tests.support import craft
from tests.support.craft import good_files
from tests.support.driver import drain, new_run, run_step

COLLAPSED = shapely.MultiPolygon([shapely.Polygon([(0, 0), (1, 1), (2, 2), (0, 0)])])


def test_duplicate_deliveries_of_a_chunk_list_its_dropped_feature_once(clean_db, tmp_path):
    good = good_files(tmp_path / "good", clean_db.timezone_release)
    root = tmp_path / "served"
    craft.craft_gadm(good.gadm_gpkg, root / mirror_path(GADM_URL),
                     {"ADM_3": craft.chain(craft.set_geometry(4, COLLAPSED),
                                           craft.set_geometry(6, COLLAPSED))})
    gid_3 = craft.read_layers(good.gadm_gpkg, ["ADM_3"])["ADM_3"].column("GID_3").to_pylist()
    with serve(root) as server:
        settings = replace(clean_db, mirror=server.url, cache_dir=tmp_path / "cache")
        run_id = new_run(settings, "gadm")
        chunks = drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                       stop_before=CHUNK)
        (bad,) = [c for c in chunks if c.args[2] == "ADM_3" and c.args[3] == 0]
        with ThreadPoolExecutor(3) as pool:
            outcomes = list(pool.map(lambda _: run_step(settings, bad), range(3)))
        drain(settings, chunks + chunks[::-1])
    assert sorted(o.result["status"] for o in outcomes) == ["loaded", "skipped", "skipped"]
    with psycopg.connect(settings.database_url) as db:
        status, layers, warnings = db.execute(
            "SELECT status, layers, warnings FROM geoload.loads WHERE run_id = %s",
            (run_id,)).fetchone()
        dropped = db.execute("SELECT sum(c.dropped) FROM geoload.chunks c JOIN geoload.loads "
                             "USING (load_id) WHERE run_id = %s", (run_id,)).fetchone()[0]
        nulls = db.execute("SELECT fid FROM gadm.adm_3 WHERE geom IS NULL ORDER BY fid").fetchall()
    assert status == "published" and dropped == 2 and nulls == [(5,), (7,)]
    assert layers["ADM_3"]["dropped"] == 2
    assert layers["ADM_3"]["loaded"] == layers["ADM_3"]["source"]
    (warning,) = warnings
    assert (warning["kind"], warning["layer"], warning["count"]) == ("dropped_features", "ADM_3",
                                                                     2)
    assert [(f["fid"], f["key"]) for f in warning["features"]] == [(5, gid_3[4]), (7, gid_3[6])]


def test_what_a_layer_of_broken_features_writes_to_the_ledger_is_bounded(clean_db, tmp_path):
    """Every ADM_4 feature collapsed: every row is kept, all are counted, 100 are listed."""
    good = good_files(tmp_path / "good", clean_db.timezone_release)
    root = tmp_path / "served"
    craft.craft_gadm(good.gadm_gpkg, root / mirror_path(GADM_URL),
                     {"ADM_4": craft.map_geometries(lambda g: [COLLAPSED] * len(g))})
    features = craft.read_layers(good.gadm_gpkg, ["ADM_4"])["ADM_4"].num_rows
    assert features > MAX_LISTED
    with serve(root) as server:
        settings = replace(clean_db, mirror=server.url, cache_dir=tmp_path / "cache",
                           chunk_features=features)  # one chunk holds them all
        run_id = new_run(settings, "gadm")
        drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))])
    with psycopg.connect(settings.database_url) as db:
        listed, dropped, chunk_bytes = db.execute(
            "SELECT jsonb_array_length(dropped_features), dropped, "
            "octet_length(dropped_features::text) FROM geoload.chunks JOIN geoload.loads "
            "USING (load_id) WHERE run_id = %s AND layer = 'ADM_4'", (run_id,)).fetchone()
        (warning,), warnings_bytes = db.execute(
            "SELECT warnings, octet_length(warnings::text) FROM geoload.loads "
            "WHERE run_id = %s", (run_id,)).fetchone()
        kept = db.execute("SELECT count(*), count(geom) FROM gadm.adm_4").fetchone()
    assert kept == (features, 0)
    assert (listed, dropped) == (MAX_LISTED, features)
    assert (warning["count"], len(warning["features"])) == (features, MAX_LISTED)
    assert f"and {features - 10:,} more" in warning["message"]
    # about 100 bytes per listed feature, however many more the layer has
    assert chunk_bytes < 150 * MAX_LISTED and warnings_bytes < 2 * chunk_bytes
