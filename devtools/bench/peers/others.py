"""The ways a user would load the same file without geoload, behind one small interface.

Each peer runs in a schema of its own, emptied before every run (outside the timing), and
is timed from its first step to its tables indexed. A peer whose tool or package is
missing is skipped with a note; one that fails says so in its row.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from devtools.bench.cpu import Busy
from devtools.bench.own import OwnCPU
from devtools.bench.peers.job import Job, fresh_schema


@dataclass(frozen=True)
class Peer:
    way: str
    schema: str
    #: Loads ``job`` into ``schema``; what it does before returning is timed.
    load: Callable[[Job, str], None]
    #: Commands and modules it needs; the first missing one skips it.
    commands: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    shapefiles_only: bool = False
    #: Runs in the benchmark's own process (a Python library), not as commands.
    in_process: bool = False

    def missing(self) -> str | None:
        """Why this peer can't run here, or None."""
        for command in self.commands:
            if shutil.which(command) is None:
                return f"skipped: {command} not found (apt-get install postgis gdal-bin)"
        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                return f"skipped: Python package {module} missing (pip install '.[bench]')"
        return None

    def applies(self, job: Job) -> bool:
        return job.shapefile or not self.shapefiles_only

    def run(self, job: Job) -> tuple[float, float | None, float]:
        """Wall seconds, the machine's busy CPU seconds and the peer's own CPU seconds
        (:mod:`devtools.bench.own`) of one load from scratch."""
        fresh_schema(job.settings, self.schema)
        with Busy() as busy, OwnCPU(job.settings.database_url, in_process=self.in_process) as own:
            started = time.perf_counter()
            self.load(job, self.schema)
            seconds = time.perf_counter() - started
        return seconds, busy.seconds, own.seconds


def _ogr2ogr(job: Job, schema: str) -> None:
    from devtools.bench.peers.core import ogr2ogr_command

    subprocess.run(ogr2ogr_command(job.dataset, job.settings, job.source, schema), check=True,
                   capture_output=True)


#: ogr2ogr alone, on the shapefile through /vsizip/ or the GeoPackage already extracted
#: (:func:`devtools.bench.peers.core.ogr2ogr_source`): the reference of every ratio.
OGR2OGR = Peer("ogr2ogr", "bench_ogr2ogr", _ogr2ogr, commands=("ogr2ogr",))


def _peers() -> tuple[Peer, ...]:
    from devtools.bench.peers import script, shp2pgsql, with_duckdb, with_geopandas

    return (
        Peer("user's script (curl+unzip+ogr2ogr+indexes)", "bench_script", script.load,
             commands=("curl", "unzip", "ogr2ogr", "psql")),
        Peer("shp2pgsql -D | psql + repair", "bench_shp2pgsql", shp2pgsql.load,
             commands=("unzip", "shp2pgsql", "psql"), shapefiles_only=True),
        Peer("geopandas to_postgis", "bench_geopandas", with_geopandas.load,
             modules=("geopandas", "geoalchemy2", "sqlalchemy"), in_process=True),
        Peer("DuckDB spatial -> PostGIS", "bench_duckdb", with_duckdb.load,
             modules=("duckdb", "duckdb_ext"), in_process=True),
    )


OTHERS: tuple[Peer, ...] = _peers()
