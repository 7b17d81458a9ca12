"""The arguments that choose what a load loads and where, parsed in one place.

``python -m service.enqueue`` uses them, and any other command that starts loads
(``geoload load``) can add the same arguments with :func:`add_arguments` and turn
them into each dataset's :class:`~service.catalog.options.LoadOptions` with
:func:`options`, resolved here, in the producer, once.
"""

from __future__ import annotations

import argparse

from service.catalog import Dataset
from service.catalog.options import LoadOptions, parse_levels, resolve
from service.errors import ConfigError
from service.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--countries``, ``--levels``, ``--schema`` and ``--source``."""
    parser.add_argument("--countries", type=_codes, default=(), metavar="ISO3,...",
                        help="GADM: load these countries' files (one fetch each, in "
                             "parallel), e.g. NPL,DZA")
    parser.add_argument("--levels", type=parse_levels, default=(), metavar="LEVELS",
                        help="load only these levels, e.g. 0-2 or 0,1,3 (GADM)")
    parser.add_argument("--schema", default=None, metavar="NAME",
                        help="publish into this schema (created if missing), same table names")
    parser.add_argument("--source", default=None, metavar="PATH_OR_URL",
                        help="load this file instead of upstream's (one dataset; same layers "
                             "and fields); a local path must be readable by every worker")


def options(args: argparse.Namespace, datasets: list[Dataset],
            settings: Settings) -> dict[str, LoadOptions]:
    """Each dataset's options, fixed now from the arguments and this process's settings."""
    from service.fetch.releases import release_for

    if args.source and len(datasets) != 1:
        raise ConfigError("--source loads one dataset's file: name exactly one dataset",
                          hint="e.g. python -m service.enqueue gadm --source /data/gadm.gpkg")
    return {d.name: resolve(d, settings, levels=args.levels, schema=args.schema,
                            countries=args.countries, release=release_for(d, settings),
                            source=args.source)
            for d in datasets}


def _codes(text: str) -> tuple[str, ...]:
    return tuple(code for code in text.replace(" ", ",").split(",") if code)
