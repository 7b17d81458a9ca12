"""The benchmark's options, apart from the benchmark itself.

``geoload bench`` loads this one file from a checkout to parse its arguments (so that
``--help`` and usage errors answer at once, as every other command does) before it starts
``python -m devtools.bench``; it must therefore import nothing from ``devtools``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from service import cli

DESCRIPTION = ("geoload against ogr2ogr, the ways a user would pick instead and the raw "
               "binary COPY floor, on the same files into the same PostgreSQL; medians of "
               "several rounds, with ratios and peak RSS.")


def build_parser(prog: str = "python -m devtools.bench",
                 epilog: str | None = None) -> argparse.ArgumentParser:
    p = cli.parser(prog, DESCRIPTION, epilog)
    p.add_argument("datasets", nargs="*", default=["timezone", "gadm"])
    p.add_argument("--size", default="dense",
                   help="generated data size: tiny, small, bench, dense (GADM's density)")
    p.add_argument("--gadm", help="path or URL of a GADM levels zip instead of generated data")
    p.add_argument("--timezone", help="path or URL of a timezone shapefile zip")
    p.add_argument("--data", type=Path, help="where generated data is kept (reused)")
    p.add_argument("--runs", type=int, default=3,
                   help="rounds; each runs every way once (medians are printed)")
    p.add_argument("--workers", type=int, default=2, help="worker processes of the N-way run")
    p.add_argument("--threads", type=int, default=2, help="threads per worker process")
    p.add_argument("--database", default="geoload_bench", help="database to load into")
    p.add_argument("--no-ogr2ogr", action="store_true", help="skip ogr2ogr")
    p.add_argument("--no-peers", action="store_true",
                   help="skip the user's script, shp2pgsql, geopandas and DuckDB")
    p.add_argument("--memory", action="store_true",
                   help="also load a file 1/4 the size and compare the worker's peak RSS")
    p.add_argument("--profile", action="store_true",
                   help="also load each dataset once more, sampled: CPU seconds per stage for "
                        "the workers and PostgreSQL's backends")
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    return p
