"""``python -m devtools.bench.lookup``: point lookup and change report against the load.

In one run, on the benchmark files (generated, or reused from ``--data``):

1. loads each dataset with geoload (one worker process, 2 threads: the load's time, as
   in ``python -m devtools.bench``), without its lookup table (``GEOLOAD_LOOKUP=0``) and
   then with it (each chunk cutting its pieces, the finish indexing them): the
   difference is what the lookup table costs the load; its disk is the load's record;
2. with ``--rebuild``, also builds the lookup tables from the loaded tables in one go (the
   way they were built at publish before the chunks cut them);
3. computes the change report of a release with known edits against the live tables
   (the publish's extra cost, beside the load's time), and of one where every time zone
   is reshaped (the worst case);
4. looks up the same ``--points`` random land and sea points (uniform in lon/lat) with
   geoload's lookup tables (time zone alone; time zone and the full GADM hierarchy), on 1
   and on 2 connections; with a naive ``ST_Contains`` on the unsubdivided tables (on a
   sample: it is slow); and with timezonefinder when it is installed.

5. times ``GET /api/lookup`` on a dashboard served in process: ``--http`` sequential
   requests (one keep-alive connection), median milliseconds.

Each way runs ``--runs`` times; medians are printed. ``--vertices 32,64,128,255,512``
also builds one time zone lookup table per vertex limit (build time, disk, points/s);
``--per-level`` also builds GADM as one lookup table per level instead of one in all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from devtools.bench import data, peers, runner
from devtools.bench.runner import bench_settings
from devtools.testdata.server import serve
from service import catalog, changes, cli, lookup
from service import settings as config
from service.ledger import loads
from service.ledger.records import LookupCost
from service.settings import Settings

SCHEMA = "lookup_bench"


@dataclass
class Way:
    """One way of doing something, timed ``runs`` times."""

    what: str
    points: int = 0
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def per_second(self) -> float:
        return self.points / self.median if self.points else float("nan")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devtools.bench.lookup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="bench", help="generated data size: tiny, small, bench")
    p.add_argument("--data", type=Path, help="where generated data is kept (reused)")
    p.add_argument("--database", default="geoload_bench_lookup")
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--naive-points", type=int, default=1_000,
                   help="points for the naive ST_Contains ways (points/s is what counts)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--vertices", default="", help="e.g. 32,64,128,255,512: a sweep")
    p.add_argument("--grids", default="", help="e.g. 6,7,8,9: a sweep of grid levels")
    p.add_argument("--per-level", action="store_true",
                   help="also one GADM lookup table per level")
    p.add_argument("--http", type=int, default=1000,
                   help="sequential GET /api/lookup requests timed (0: none)")
    p.add_argument("--rebuild", action="store_true",
                   help="also build the lookup tables from the loaded tables in one go")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = replace(bench_settings(config.get(), args.database), queue="geoload-bench-lookup")
    root = args.data or settings.cache_dir / "bench-data"
    data.assemble(root, settings, args.size, {"gadm": None, "timezone": None})
    work = peers.scratch()
    ways: list[Way] = []
    with serve(root) as server:
        settings = replace(settings, mirror=server.url)
        bare = {name: _load(replace(settings, lookup_tables=False), name, work)
                for name in ("timezone", "gadm")}
        loads = {name: _load(settings, name, work) for name in ("timezone", "gadm")}
    ways += [Way(f"{name} load without lookup table (geoload, 1 worker)", 0, [s])
             for name, s in bare.items()]
    ways += [Way(f"{name} load (geoload, 1 worker)", 0, [s]) for name, s in loads.items()]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        ways += [_in_load_way(conn, name, bare[name], loads[name]) for name in loads]
        if args.rebuild:
            ways += _builds(conn, lookup.DEFAULT_MAX_VERTICES)
        ways += _change_reports(conn, args.runs)
        points = random_points(args.points)
        ways += _lookups(settings.database_url, points, args)
        ways.append(_single(settings.database_url, args.runs))
        if args.http:
            ways.append(_http(settings, args.http, args.runs))
        if args.vertices or args.grids:
            ways += _sweep(conn, settings.database_url, points, args)
        if args.per_level:
            ways += _per_level(conn, settings.database_url, points, args.runs)
    print(render(ways, loads, bare))
    if args.json:
        args.json.write_text(json.dumps([asdict(w) for w in ways], indent=2))
    return cli.EXIT_OK


def _load(settings: Settings, dataset: str, work: Path) -> float:
    timed = runner.geoload_once(settings, dataset, 1, 2, work)
    print(f"  {dataset} loaded in {timed.seconds:.2f} s", file=sys.stderr, flush=True)
    return timed.seconds


def random_points(n: int, seed: int = 1) -> list[tuple[float, float]]:
    """Uniform in lon/lat over the generated files' extent: land and sea alike."""
    rng = np.random.default_rng(seed)
    return list(zip(rng.uniform(-85, 85, n).tolist(), rng.uniform(-180, 180, n).tolist()))


# --- building the lookup tables --------------------------------------------------------------


def live_sources(dataset: str) -> list[lookup.SourceTable]:
    ds = catalog.get(dataset)
    live = {layer.table: layer.table for layer in ds.layers}
    if dataset == "gadm":
        return lookup.gadm_sources(ds, live)
    return lookup.timezone_sources(ds, live)


def build(conn: psycopg.Connection, sources: Sequence[lookup.SourceTable], table: str,
          dataset: str, max_vertices: int) -> lookup.BuildStats:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    with conn.transaction():
        stats = lookup.build(conn, sources, f"{SCHEMA}.{table}", dataset=dataset,
                             max_vertices=max_vertices)
    print(f"  built {table}: {stats.seconds:.1f} s, {stats.pieces} pieces", file=sys.stderr,
          flush=True)
    return stats


def _builds(conn: psycopg.Connection, max_vertices: int) -> list[Way]:
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    out = []
    for dataset in ("timezone", "gadm"):
        stats = build(conn, live_sources(dataset), f"{dataset}_lookup", dataset, max_vertices)
        out.append(_build_way(conn, dataset, stats))
    return out


def _build_way(conn: psycopg.Connection, dataset: str, stats: lookup.BuildStats) -> Way:
    data_bytes = sum(_table_bytes(conn, layer.table) for layer in catalog.get(dataset).layers)
    return Way(f"{dataset} lookup table build ({stats.max_vertices} vertices)", 0,
               [stats.seconds],
               f"{stats.pieces} pieces, table {stats.table_bytes / 2**20:.0f} MB + GiST "
               f"{stats.index_bytes / 2**20:.1f} MB; data tables "
               f"{data_bytes / 2**20:.0f} MB")


def _in_load_way(conn: psycopg.Connection, dataset: str, bare: float, full: float) -> Way:
    """What the lookup table cost the load: its time beyond the load without one, and the
    disk its load recorded (:func:`service.ledger.loads.published_lookup`)."""
    built = loads.published_lookup(conn, dataset) or LookupCost("", 0, 0.0, 0, 0)
    data_bytes = sum(_table_bytes(conn, layer.table) for layer in catalog.get(dataset).layers)
    return Way(f"{dataset} lookup table build (in the load)", 0, [full - bare],
               f"{built.pieces} pieces, table {built.table_bytes / 2**20:.0f} MB + indexes "
               f"{built.index_bytes / 2**20:.1f} MB (indexed in "
               f"{built.index_seconds:.2f} s); data tables {data_bytes / 2**20:.0f} MB")


def _table_bytes(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()
    return int(row[0]) if row else 0


# --- the change report -------------------------------------------------------------------------


def _change_reports(conn: psycopg.Connection, runs: int) -> list[Way]:
    """A copy of each live table with known edits, compared as the publish would."""
    out = []
    for dataset in ("timezone", "gadm"):
        ds = catalog.get(dataset)
        staged = {layer.table: _edited_copy(conn, layer.table, dataset) for layer in ds.layers}
        layers = changes.compared_layers(ds, staged)
        way = Way(f"{dataset} change report (known edits)")
        for _ in range(runs):
            report = changes.compare(conn, dataset, 0, layers)
            way.seconds.append(report.seconds)
        way.note = report.summary()
        out.append(way)
    worst = Way("timezone change report (every zone reshaped, 1 run)")
    ds = catalog.get("timezone")
    staged = {"timezone.timezones": _edited_copy(conn, "timezone.timezones", "timezone",
                                                 every=True)}
    report = changes.compare(conn, "timezone", 0, changes.compared_layers(ds, staged))
    worst.seconds.append(report.seconds)
    worst.note = report.summary()
    return [*out, worst]


def _edited_copy(conn: psycopg.Connection, table: str, dataset: str,
                 every: bool = False) -> str:
    """``table`` copied with edits: 5 rows gone, 5 renamed, 5 reshaped, 5 added (or every
    geometry nudged by 1e-6°, ``every``). Indexed on its key, as a staging table is."""
    key = changes.compared_layers(catalog.get(dataset), {table: table})[0]
    name = f"{table.replace('.', '__')}__edited"
    ids: dict[str, sql.Composable] = {
        "copy": sql.Identifier(SCHEMA, name), "src": sql.Identifier(*table.split(".")),
        "k": sql.Identifier(key.key), "schema": sql.Identifier(SCHEMA)}

    def run(text: str, *params: object) -> None:
        conn.execute(sql.SQL(text).format(**ids), params or None)

    run("CREATE SCHEMA IF NOT EXISTS {schema}")
    run("DROP TABLE IF EXISTS {copy}")
    run("CREATE TABLE {copy} AS SELECT * FROM {src}")
    ids["picked"] = sql.SQL("(SELECT {k} FROM {copy} ORDER BY {k} OFFSET %s LIMIT 5)").format(
        **ids)
    if every:
        run("UPDATE {copy} SET geom = ST_Translate(geom, 1e-6, 0)")
    else:
        run("DELETE FROM {copy} WHERE {k} IN {picked}", 0)
        if key.names:
            ids["name"] = sql.Identifier(key.names[0])
            run("UPDATE {copy} SET {name} = {name} || ' (new)' WHERE {k} IN {picked}", 10)
        run("UPDATE {copy} SET geom = ST_Multi(ST_Buffer(geom, 0.01)) WHERE {k} IN {picked}", 20)
        run("INSERT INTO {copy} SELECT * FROM {copy} WHERE {k} IN {picked}", 30)
        run("UPDATE {copy} SET {k} = {k} || '_new' WHERE ctid IN (SELECT ctid FROM "
            "(SELECT ctid, row_number() OVER (PARTITION BY {k}) n FROM {copy}) d WHERE n = 2)")
    run("CREATE INDEX ON {copy} ({k})")
    run("ANALYZE {copy}")
    return f"{SCHEMA}.{name}"


# --- lookups -------------------------------------------------------------------------------------


def _lookups(url: str, points: list[tuple[float, float]], args: argparse.Namespace
             ) -> list[Way]:
    sample = points[:args.naive_points]
    out = []
    for label, datasets in (("time zone", ["timezone"]), ("time zone + GADM", None)):
        for connections in (1, 2):
            out.append(_timed(f"geoload lookup tables, {label}, {connections} conn.",
                              len(points), args.runs,
                              partial(_parallel, url, points, datasets, connections)))
        tables = ["timezone.timezones"] + ([] if datasets else [
            layer.table for layer in catalog.get("gadm").layers])
        out.append(_timed(f"naive ST_Contains, {label}, 1 conn.", len(sample), args.runs,
                          partial(_naive, url, sample, tables)))
    out.append(_timezonefinder(points, args.runs))
    return out


def _timed(what: str, n: int, runs: int, run: Callable[[], object]) -> Way:
    way = Way(what, n)
    for _ in range(runs):
        started = time.perf_counter()
        run()
        way.seconds.append(time.perf_counter() - started)
    print(f"  {what}: {way.per_second:,.0f} points/s", file=sys.stderr, flush=True)
    return way


def _parallel(url: str, points: list[tuple[float, float]], datasets: list[str] | None,
              connections: int) -> None:
    """The points split into ``connections`` parts, each looked up on its own connection."""
    parts = [points[i::connections] for i in range(connections)]

    def one(part: list[tuple[float, float]]) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            lookup.lookup_many(conn, part, datasets=datasets)

    threads = [threading.Thread(target=one, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _naive(url: str, points: list[tuple[float, float]], tables: list[str]) -> None:
    """What one writes without lookup tables: ST_Contains on the loaded tables."""
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT p.i FROM {} t WHERE ST_Contains(t.geom, p.g)").format(
            sql.Identifier(*t.split("."))) for t in tables)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL(
            "SELECT count(*) FROM (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) g "
            "FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY u(x, y, i)) p "
            "CROSS JOIN LATERAL ({}) l").format(union), (lons, lats)).fetchone()


def _timezonefinder(points: list[tuple[float, float]], runs: int) -> Way:
    try:
        from timezonefinder import TimezoneFinder  # type: ignore[import-not-found]
    except ImportError:
        return Way("timezonefinder, time zone", 0, [], "not installed")
    finder = TimezoneFinder(in_memory=True)
    lats = np.array([p[0] for p in points])
    lons = np.array([p[1] for p in points])
    way = _timed("timezonefinder (its own data), time zone, 1 process", len(points), runs,
                 lambda: [finder.timezone_at(lng=x, lat=y) for x, y in zip(lons, lats)])
    way.note = ("answers from the timezone-boundary-builder 2026 data it ships, not from "
                "the generated file: its own format can't be built from a GeoJSON offline")
    return way


# --- optional sweeps -----------------------------------------------------------------------


def _sweep(conn: psycopg.Connection, url: str, points: list[tuple[float, float]],
           args: argparse.Namespace) -> list[Way]:
    """Time zone lookup tables built with other vertex limits or grid levels."""
    grid = lookup.DEFAULT_GRID_LEVEL
    vertices = lookup.DEFAULT_MAX_VERTICES
    shapes = ([(int(v), grid) for v in args.vertices.split(",") if v]
              + [(vertices, int(g)) for g in args.grids.split(",") if g])
    out = []
    for n, level in shapes:
        name = f"timezone@{n}v{level}g"
        table = f"timezone_lookup_{n}v{level}g"
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        with conn.transaction():
            stats = lookup.build(conn, live_sources("timezone"), f"{SCHEMA}.{table}",
                                 dataset=name, max_vertices=n, grid_level=level)
        way = _timed(f"time zone, {n} vertices, grid {level}, 1 conn.", len(points), args.runs,
                     partial(_parallel, url, points, [name], 1))
        way.note = (f"build {stats.seconds:.1f} s, {stats.pieces} pieces, "
                    f"{(stats.table_bytes + stats.index_bytes) / 2**20:.0f} MB")
        out.append(way)
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, table)))
    return out


def _single(url: str, runs: int, n: int = 200) -> Way:
    """One point per call, as the API will do: the library's round trip, median of ``n``."""
    points = random_points(n, seed=2)
    way = Way("one point per call, time zone + GADM (library)", 0)
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(runs):
            took = []
            for lat, lon in points:
                started = time.perf_counter()
                lookup.lookup(conn, lat, lon)
                took.append(time.perf_counter() - started)
            way.seconds.append(statistics.median(took))
    way.note = (f"median of {n} calls: {1000 * way.median:.2f} ms (runs: "
                + ", ".join(f"{1000 * s:.2f}" for s in way.seconds) + " ms)")
    return way


def _http(settings: Settings, n: int, runs: int) -> Way:
    """``GET /api/lookup`` on the dashboard (served in process, uvicorn), ``n`` sequential
    requests on one keep-alive connection; the median milliseconds of each run."""
    import requests

    from service.dashboard.app import create_app
    from service.dashboard.server import serving

    points = random_points(n, seed=3)
    way = Way("GET /api/lookup, time zone + GADM, sequential, keep-alive", 0)
    with serving(create_app(settings), "127.0.0.1", 0) as server, requests.Session() as http:
        url = server.url + "/api/lookup"
        http.get(url, params={"lat": 0, "lon": 0}, timeout=10).raise_for_status()
        for _ in range(runs):
            took = []
            for lat, lon in points:
                started = time.perf_counter()
                http.get(url, params={"lat": lat, "lon": lon}, timeout=10).raise_for_status()
                took.append(time.perf_counter() - started)
            way.seconds.append(statistics.median(took))
    way.note = (f"median of {n} requests: {1000 * way.median:.2f} ms (runs: "
                + ", ".join(f"{1000 * s:.2f}" for s in way.seconds) + " ms)")
    print(f"  {way.what}: {way.note}", file=sys.stderr, flush=True)
    return way


def _per_level(conn: psycopg.Connection, url: str, points: list[tuple[float, float]],
               runs: int) -> list[Way]:
    seconds = 0.0
    for source in live_sources("gadm"):
        seconds += build(conn, [source], f"gadm_lookup_{source.level}", "gadm@levels",
                         lookup.DEFAULT_MAX_VERTICES).seconds
    way = _timed("GADM, one lookup table per level, 1 conn.", len(points), runs,
                 lambda: _parallel(url, points, ["gadm@levels"], 1))
    one = _timed("GADM, one lookup table for all levels, 1 conn.", len(points), runs,
                 lambda: _parallel(url, points, ["gadm"], 1))
    way.note = f"build {seconds:.1f} s"
    return [way, one]


def render(ways: list[Way], loads: dict[str, float], bare: dict[str, float]) -> str:
    lines = [f"{'way':<58} {'median s':>9} {'points/s':>10}  runs (s) / note", "-" * 110]
    for w in ways:
        rate = f"{w.per_second:>10,.0f}" if w.points else f"{'-':>10}"
        runs_s = ", ".join(f"{s:.2f}" for s in w.seconds)
        lines.append(f"{w.what:<58} {w.median:>9.2f} {rate}  {runs_s}  {w.note}")
    for w in ways:
        dataset = w.what.split(" ", 1)[0]
        if dataset in loads and ("build" in w.what or "change report" in w.what):
            lines.append(f"{w.what}: {100 * w.median / bare[dataset]:.1f} % of the "
                         f"{dataset} load without lookup table ({bare[dataset]:.2f} s), "
                         f"{100 * w.median / loads[dataset]:.1f} % of the load with it "
                         f"({loads[dataset]:.2f} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(cli.run(main))
