"""PostGIS's own loader: ``shp2pgsql -D | psql``, then the invalid rows made valid.

shp2pgsql can't read a zip, so the unzip is part of its time. ``-D`` writes COPY rather
than INSERTs, ``-I`` builds the GiST index; polygons come out as MultiPolygons.
"""

from __future__ import annotations

import shlex
import subprocess

from devtools.bench.peers.job import Job


def load(job: Job, schema: str) -> None:
    folder = job.work / f"shp2pgsql-{job.dataset}"
    table = f"{schema}.{job.layers[0].table_name}"
    url = shlex.quote(job.settings.database_url)
    make_valid = "ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))"
    repair = f"UPDATE {table} SET geom = {make_valid} WHERE NOT ST_IsValid(geom)"  # noqa: S608
    script = "\n".join([
        "set -euo pipefail",
        f"rm -rf {folder}",
        f"unzip -q -o {job.archive} -d {folder}",
        f"shp2pgsql -D -I -s 4326 -g geom {folder}/*.shp {table}"
        f" | psql -q -v ON_ERROR_STOP=1 {url} >/dev/null",
        f"psql -q -v ON_ERROR_STOP=1 {url} -c {shlex.quote(repair)}",
    ])
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
