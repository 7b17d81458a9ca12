"""The ways geoload is measured against, each ending in the same tables (verified).

``core`` holds ogr2ogr alone, the GEOS validity figure and the raw COPY floor; the other
modules are the ways a user would pick instead of geoload: their own script around
ogr2ogr, ``shp2pgsql``, geopandas and DuckDB. Each loads into a schema of its own.
"""

from devtools.bench.peers.core import (
    OGR_SCHEMA,
    VALIDATION_WAY,
    dump_final_rows,
    ogr2ogr_source,
    run_copy_floor,
    scratch,
    validation_seconds,
)
from devtools.bench.peers.job import Job
from devtools.bench.peers.others import OGR2OGR, OTHERS, Peer
from devtools.bench.peers.verify import PeerFailed, expected_counts, verify

__all__ = ["OGR2OGR", "OGR_SCHEMA", "OTHERS", "VALIDATION_WAY", "Job", "Peer", "PeerFailed",
           "dump_final_rows", "expected_counts", "ogr2ogr_source",
           "run_copy_floor", "scratch", "validation_seconds", "verify"]
