"""The user's script: download, unzip, ogr2ogr, then B-tree indexes on the join keys.

What a user writes when they don't use geoload, timed as a whole, from the same loopback
server geoload downloads from; ogr2ogr builds the GiST index itself.
"""

from __future__ import annotations

import shlex
import subprocess

from devtools.bench.peers.core import ogr2ogr_command
from devtools.bench.peers.job import Job, join_keys
from service import catalog


def load(job: Job, schema: str) -> None:
    subprocess.run(["bash", "-c", text(job, schema)], check=True, capture_output=True)


def text(job: Job, schema: str) -> str:
    """The script, as a user would write it."""
    archive, folder = job.work / f"script-{job.dataset}.zip", job.work / f"script-{job.dataset}"
    member = catalog.get(job.dataset).source.member
    ogr = shlex.join(ogr2ogr_command(job.dataset, job.settings, "SOURCE", schema))
    indexes = "; ".join(f"CREATE INDEX ON {schema}.{layer.table_name} ({column})"
                        for layer in job.layers for column in join_keys(layer))
    return "\n".join([
        "set -euo pipefail",
        f"rm -rf {folder}",
        f"curl -sSf -o {archive} {shlex.quote(job.url)}",
        f"unzip -q -o {archive} -d {folder}",
        ogr.replace("SOURCE", f"{folder}/{member}"),
        f"psql -q -v ON_ERROR_STOP=1 {shlex.quote(job.settings.database_url)} "
        f"-c {shlex.quote(indexes)}",
    ])
