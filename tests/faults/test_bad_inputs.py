"""Issue #5, "Bad inputs": every bad input fails its run clearly, once, and loses nothing.

Each case goes the real way: a crafted file (or an HTTP fault) on the loopback
mirror, ``python -m service.enqueue … --wait`` and worker processes. Each one
must exit non-zero, record the failure in ``geoload.loads`` with a message that
names the dataset, the file, the problem and what to do, keep the previous
version's rows and leave no staging table. Permanent problems are dead-lettered
on their first attempt; transient ones are retried with backoff.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
import shapely

from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, Next
from tests.faults.harness import (
    GoodFiles,
    Run,
    assert_refused,
    dead_letter,
    retries,
    wait_for,
)
from tests.support import craft

pytestmark = pytest.mark.faults

#: Small archive limits, so that bombs stay small files; the tiny GeoPackage is ~2.5 MB.
WORKER_ENV = {"GEOLOAD_MAX_EXTRACT_BYTES": "16000000", "GEOLOAD_MAX_COMPRESSION_RATIO": "200"}
ZEROS = b"\0" * 8_000_000
GPKG = "gadm_410-levels.gpkg"


# --- bad files ----------------------------------------------------------------------------

Craft = Callable[[GoodFiles, Path], Path]


@dataclass(frozen=True)
class Case:
    """A crafted file, the step that must refuse it, and the problem it must name."""

    craft: Craft
    step: str
    problem: str
    dataset: str = "gadm"
    file: str = GPKG
    strict: bool = False  # enqueue --strict: data warnings fail the load
    error_type: str = "BadSource"


def _gadm(edits: dict[str, craft.Edit] | None = None, **options: object) -> Craft:
    return lambda good, out: craft.craft_gadm(good.gadm_gpkg, out, edits, **options)


def _zip(members: Callable[[GoodFiles], dict[str, Path | bytes]]) -> Craft:
    return lambda good, out: craft.zip_files(out, members(good))


def _corrupt(at: float) -> Craft:
    def make(good: GoodFiles, out: Path) -> Path:
        shutil.copyfile(good.gadm_zip, out)
        return craft.corrupt(out, at)
    return make


def _understated(good: GoodFiles, out: Path) -> Path:
    return craft.understate_size(craft.zip_files(out, {GPKG: ZEROS}), declared=100_000)


def _not_utf8(good: GoodFiles, out: Path) -> Path:
    """Latin-1 bytes in the .dbf while the .cpg says UTF-8."""
    def tzids(n: int) -> pa.Array:
        return pa.array(["Amérique/Montréal", *(f"Etc/Zone_{i:02d}" for i in range(1, n))])
    return craft.craft_timezone(good.timezone_zip, out, craft.set_field("tzid", tzids),
                                encoding="ISO-8859-1", declared="UTF-8")


def _timezone(edit: craft.Edit) -> Craft:
    return lambda good, out: craft.craft_timezone(good.timezone_zip, out, edit)


ZIP = "gadm_410-levels.zip"
TIMEZONE_SHP = "combined-shapefile-with-oceans.shp"
COLLAPSED = shapely.MultiPolygon([shapely.Polygon([(0, 0), (1, 1), (2, 2), (0, 0)])])
PROJECTED = shapely.MultiPolygon([shapely.box(500_000, 4_000_000, 501_000, 4_001_000)])

CASES = {
    # A BadSource whose cached copy is discarded (see test_corrupt_archive_is_dropped...).
    "corrupt zip, bad CRC": Case(_corrupt(0.5), FETCH,
                                 r"the archive is corrupt \(member '.+' fails its CRC", file=ZIP,
                                 error_type="CorruptArchive"),
    "corrupt zip, bad deflate data": Case(_corrupt(0), FETCH, r"the archive is corrupt "
                                          r"\(member '.+' does not inflate", file=ZIP,
                                          error_type="CorruptArchive"),
    "zip without the member": Case(_zip(lambda g: {"README.txt": b"moved"}), FETCH,
                                   r"no member matches '\*\.gpkg'; the archive holds README",
                                   file=ZIP),
    "zip-slip ../": Case(_zip(lambda g: {"../../../tmp/evil.gpkg": g.gadm_gpkg}), FETCH,
                         r"member '../../../tmp/evil.gpkg' would be written outside the cache "
                         r"\(zip-slip\)", file=ZIP),
    "zip-slip absolute": Case(_zip(lambda g: {"/tmp/evil.gpkg": g.gadm_gpkg}), FETCH,
                              r"'/tmp/evil.gpkg' would be written outside the cache", file=ZIP),
    "zip bomb, declared size": Case(_zip(lambda g: {GPKG: ZEROS * 3}), FETCH,
                                    r"declare 24,000,000 bytes unpacked, over the 16,000,000 "
                                    r"limit", file=ZIP),
    "zip bomb, ratio": Case(_zip(lambda g: {GPKG: ZEROS}), FETCH,
                            r"compressed \d+:1, beyond the 200:1 limit \(zip bomb\?\)", file=ZIP),
    "zip bomb, understated size": Case(_understated, FETCH,
                                       r"unpacks beyond its declared 100,000 bytes", file=ZIP),
    "missing key field": Case(_gadm({"ADM_2": craft.drop_field("GID_1")}), PLAN,
                              r"layer 'ADM_2': required key field\(s\) GID_1 missing; the layer "
                              r"has GID_2 \(text\), GID_0 \(text\), COUNTRY \(text\), NAME_1"),
    "key field of another type": Case(_gadm({"ADM_2": craft.set_field(
        "GID_2", lambda n: pa.array(range(n), pa.int64()))}), PLAN,
        r"key field 'GID_2' is bigint, the catalog expects text"),
    "missing non-key field, strict": Case(
        _gadm({"ADM_2": craft.drop_field("NAME_2")}), PLAN,
        r"the file's schema differs from the catalog: strict mode refuses data warnings: "
        r"ADM_2: field NAME_2 is missing from the source", strict=True),
    "non-key field of another type, strict": Case(
        _gadm({"ADM_3": craft.set_field("CC_3", lambda n: pa.array(range(n), pa.int64()))}),
        PLAN, r"strict mode refuses data warnings: ADM_3: field CC_3 is bigint, the catalog "
              r"expects text; loaded as text", strict=True),
    "empty layer": Case(_gadm({"ADM_5": craft.empty}), PLAN, r"layer 'ADM_5' is empty"),
    "header promises features the table lacks": Case(
        lambda good, out: craft.header_overstates(good.gadm_gpkg, out, "ADM_5"), PLAN,
        r"layer 'ADM_5': its header \(gpkg_ogr_contents\) counts \d+ features, but its table "
        r"holds 0"),
    "header counts more features than the table holds": Case(
        lambda good, out: craft.header_overstates(good.gadm_gpkg, out, "ADM_3", keep=40), PLAN,
        r"layer 'ADM_3': its header \(gpkg_ogr_contents\) counts \d+ features, but its table "
        r"holds 40"),
    "point layer": Case(_gadm({"ADM_3": craft.map_geometries(shapely.centroid)},
                              geometry_type={"ADM_3": "Point"}), PLAN,
                        r"layer 'ADM_3' holds Point geometries, not polygons"),
    "line layer": Case(_gadm({"ADM_1": craft.map_geometries(shapely.boundary)},
                             geometry_type={"ADM_1": "MultiLineString"}), PLAN,
                       r"layer 'ADM_1' holds MultiLineString geometries, not polygons"),
    "projected CRS": Case(_gadm(crs="EPSG:3857"), PLAN,
                          r"layer 'ADM_0' is in EPSG:3857, not EPSG:4326"),
    "geometry make_valid can't make polygonal, strict": Case(
        _gadm({"ADM_3": craft.set_geometry(4, COLLAPSED)}), CHUNK,
        r"layer 'ADM_3': 1 feature\(s\) has no polygonal part even after make_valid \(fid 5\)",
        strict=True),
    "coordinates outside EPSG:4326, strict": Case(
        _gadm({"ADM_4": craft.set_geometry(9, PROJECTED)}), CHUNK,
        r"layer 'ADM_4': 1 feature\(s\) has coordinates outside EPSG:4326 bounds \(fid 10\)",
        strict=True),
    "non-UTF-8 attributes": Case(
        _not_utf8, CHUNK, r"field 'tzid' is not valid UTF-8 in 1 feature\(s\) \(fid 0: "
                          r"b'Am\\xe9rique/Montr\\xe9al'\)",
        dataset="timezone", file=TIMEZONE_SHP),
    "missing tzid": Case(
        _timezone(craft.chain(craft.set_field("zone", lambda n: pa.array(["x"] * n)),
                              craft.drop_field("tzid"))), PLAN,
        r"layer 'combined-shapefile-with-oceans': required key field\(s\) tzid missing; the "
        r"layer has zone \(text\)", dataset="timezone", file=TIMEZONE_SHP),
    "indexed value too long to index": Case(
        _gadm({"ADM_2": craft.set_value("GID_2", 6, craft.text(10_000))}), CHUNK,
        r"field 'GID_2' of fid 7 is 10,000 bytes long; PostgreSQL can't index values over "
        r"2,600 bytes"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_file_fails_at_once_and_keeps_the_previous_version(stack, previous, tmp_path, name):
    case = CASES[name]
    before = stack.snapshot()
    stack.mirror.put(case.dataset, case.craft(stack.mirror.good, tmp_path / "bad.zip"))
    run = stack.enqueue(case.dataset, strict=case.strict)
    load = assert_refused(run, case.dataset, case.step, case.problem, file=case.file,
                          error_type=case.error_type)
    assert retries(dead_letter(stack, run, case.step)) == 0
    if case.step == CHUNK:
        failed = [c for c in stack.chunks(run.run_id) if c["status"] == "failed"]
        assert [(c["attempts"], c["error"]) for c in failed] == [(1, load["error"])]
    stack.assert_unchanged(before)


def test_corrupt_archive_is_dropped_from_the_cache(stack, previous, tmp_path):
    """The next run downloads the file again instead of trusting the bad copy."""
    stack.mirror.put("gadm", _corrupt(0.5)(stack.mirror.good, tmp_path / "bad.zip"))
    assert stack.enqueue("gadm").code == 1
    assert not (stack.settings.cache_dir / "gadm" / ZIP).exists()
    stack.mirror.restore()
    assert stack.enqueue("gadm").code == 0
    assert [r.status for _, r in stack.mirror.gets("gadm")] == [200]


def test_a_refused_bomb_leaves_nothing_unpacked(stack, previous, tmp_path):
    """The lying member was being inflated when it was caught: its bytes are removed."""
    stack.mirror.put("gadm", _understated(stack.mirror.good, tmp_path / "bad.zip"))
    assert stack.enqueue("gadm").code == 1
    assert [p.name for p in (stack.settings.cache_dir / "gadm").iterdir()
            if ".tmp" in p.name] == []


# --- bad answers from upstream ------------------------------------------------------------

def test_html_page_instead_of_the_archive_is_not_retried(stack, previous):
    before = stack.snapshot()
    stack.mirror.fault("gadm", "html")
    run = stack.enqueue("gadm")
    assert_refused(run, "gadm", FETCH, r"returned an HTML page, not a zip archive "
                   r"\(first bytes b'<!DOCTYPE html>", file=stack.mirror.url)
    assert len(stack.mirror.gets("gadm")) == 1
    assert retries(dead_letter(stack, run, FETCH)) == 0
    stack.assert_unchanged(before)


def test_404_is_not_retried(stack, previous):
    before = stack.snapshot()
    stack.mirror.fault("gadm", "status", status=404)
    run = stack.enqueue("gadm")
    assert_refused(run, "gadm", FETCH, r"answered 404 Not Found: the file is not there",
                   file=stack.mirror.url)
    assert len(stack.mirror.gets("gadm")) == 1
    stack.assert_unchanged(before)


def test_500_is_retried_with_backoff_then_recorded(stack, previous):
    before = stack.snapshot()
    stack.mirror.fault("gadm", "status", status=500)
    run = stack.enqueue("gadm")
    assert_refused(run, "gadm", FETCH, r"answered 500 Internal Server Error",
                   file=stack.mirror.url, error_type="UpstreamUnavailable")
    times = [at for at, _ in stack.mirror.gets("gadm")]
    assert len(times) == 3  # the first try and GEOLOAD_MAX_RETRIES=2 retries
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= 1.0 and gaps[1] >= 2.0, gaps  # backoff 1-2 s, then 2-4 s
    assert retries(dead_letter(stack, run, FETCH)) == 2
    stack.assert_unchanged(before)


def test_503_once_is_retried_and_the_load_succeeds(stack, previous):
    stack.mirror.fault("gadm", "status", status=503, once=True)
    run = stack.enqueue("gadm")
    assert run.code == 0, run.output[-3000:]
    (first, failed), (second, served) = stack.mirror.gets("gadm")
    assert (failed.status, served.status) == (503, 200)
    assert second - first >= 1.0
    assert stack.snapshot() == previous  # the good file, loaded again


def test_truncated_download_is_resumed_with_range(stack, previous):
    stack.mirror.fault("gadm", "truncate", once=True, after=300_000)
    run = stack.enqueue("gadm")
    assert run.code == 0, run.output[-3000:]
    size = stack.mirror.good.gadm_zip.stat().st_size
    (_, cut), (_, rest) = stack.mirror.gets("gadm")
    assert (cut.status, cut.bytes_sent) == (200, 300_000)
    kept = int(rest.headers["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 200_000 < kept <= 300_000  # what reached the disk before the cut
    assert (rest.status, rest.bytes_sent) == (206, size - kept)
    assert run.load("gadm")["bytes"] == size
    assert stack.snapshot() == previous  # the good file, loaded again


def test_checksum_mismatch_between_steps_fails_the_run(stack, previous, tmp_path):
    """Another host's plan step finds upstream changed since fetch pinned the sha256."""
    before = stack.snapshot()
    run_id = stack.new_run("gadm")
    stack.send(Next(FETCH, (run_id, "gadm")))
    wait_for(lambda: stack.loads(run_id)["gadm"]["sha256"])
    stack.mirror.put("gadm", craft.craft_gadm(stack.mirror.good.gadm_gpkg, tmp_path / "new.zip"))
    shutil.rmtree(stack.settings.cache_dir / "gadm")  # the other host has no copy yet
    stack.send(Next(PLAN, (run_id, "gadm")))
    waited = stack.cli("service.status", run_id, "--wait")
    assert waited.returncode == 1
    run = Run(waited.returncode, waited.stdout, waited.stderr, 0, run_id, stack.loads(run_id))
    assert_refused(run, "gadm", PLAN, r"upstream now serves a different file \(sha256 "
                   r"[0-9a-f]{12}…\) than the one this run started loading", file=ZIP)
    stack.assert_unchanged(before)


# --- values PostgreSQL can hold ----------------------------------------------------------

def test_megabyte_values_are_loaded_intact(stack, previous, tmp_path):
    """Text fields that are not indexed take any length PostgreSQL can store (1 GB)."""
    long_name, long_varname = craft.text(1_000_000, seed=1), "é" * 500_000
    stack.mirror.put("gadm", craft.craft_gadm(stack.mirror.good.gadm_gpkg, tmp_path / "x.zip", {
        "ADM_2": craft.chain(craft.set_value("NAME_2", 1, long_name),
                             craft.set_value("VARNAME_2", 2, long_varname))}))
    run = stack.enqueue("gadm")
    assert run.code == 0, run.output[-3000:]
    rows = stack.query("SELECT fid, name_2, varname_2 FROM gadm.adm_2 WHERE fid IN (2, 3) "
                       "ORDER BY fid")
    assert rows[0]["name_2"] == long_name and rows[1]["varname_2"] == long_varname


# --- messages nobody should have sent -----------------------------------------------------

def test_hand_crafted_messages_are_dead_lettered_without_crashing_the_worker(stack, previous):
    pids = set(stack.workers.worker_pids())
    stack.dead_letters()
    bad = [
        Next(FETCH, ("no-such-run", "nope")),          # unknown dataset
        Next(CHUNK, ("no-such-run", "gadm", "ADM_9", 0)),  # unknown layer
        Next(PLAN, ("no-such-run",)),                  # wrong arity
        Next(FETCH, (42, "gadm")),                     # run id of the wrong type
        Next(CHUNK, ("no-such-run", "gadm", "ADM_1", [0])),  # chunk number of the wrong type
        Next(FINISH, ("no-such-run", "gadm", "ADM_1")),  # well-formed, but no such run
        Next("drop_all_tables", ("gadm",)),            # unknown actor
    ]
    stack.send(*bad)
    stack.send_raw(b"\x00\xff not json", json.dumps({"actor_name": FETCH}).encode())
    wait_for(lambda: stack.dead_letter_count() >= len(bad) + 2)
    dead = stack.dead_letters()
    assert len(dead) == len(bad) + 2
    decoded = [m for m in dead if "message_id" in m]
    assert sorted(m["actor_name"] for m in decoded) == sorted(step.actor for step in bad)
    assert all(retries(m) == 0 for m in decoded)
    assert stack.workers.proc.poll() is None and set(stack.workers.worker_pids()) == pids
    assert stack.enqueue("gadm").code == 0


def test_hand_crafted_calls_that_fit_no_signature_are_not_retried(stack, previous):
    import dramatiq

    from service.pipeline.broker import make_broker

    stack.dead_letters()
    broker = make_broker(stack.settings)
    try:
        for actor, args, kwargs in ((FETCH, (), {"run_id": "x", "dataset": "gadm"}),
                                    ("record_failure", ("load_chunk",), {})):
            broker.enqueue(dramatiq.Message(queue_name=stack.settings.queue, actor_name=actor,
                                            args=args, kwargs=kwargs, options={}))
    finally:
        broker.close()
    wait_for(lambda: stack.dead_letter_count() >= 2)
    assert [retries(m) for m in stack.dead_letters()] == [0, 0]
