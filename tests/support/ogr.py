"""Load a file with ogr2ogr as a user would: the cross-check geoload's tables are compared to."""

from __future__ import annotations

import subprocess

import psycopg

#: Where ogr2ogr loads the known places for the cross-check.
OGR = "places_ogr"


def ogr2ogr(url: str, source: str, schema: str, *, layer: str | None = None,
            name: str | None = None) -> None:
    """Load ``source`` (one layer, or all) the way the benchmark's peer does."""
    args = ["ogr2ogr", "-f", "PostgreSQL", f"PG:{_libpq(url)}", source,
            "-nlt", "PROMOTE_TO_MULTI", "-lco", "GEOMETRY_NAME=geom", "-lco", f"SCHEMA={schema}",
            "--config", "PG_USE_COPY", "YES", "-overwrite"]
    args += [layer] if layer else []
    args += ["-nln", name] if name else []
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=120)


def _libpq(url: str) -> str:
    """``postgresql://user@host:port/db`` as the keyword string GDAL's driver takes."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return " ".join(f"{k}={v}" for k, v in info.items() if v is not None)
