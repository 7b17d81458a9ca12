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
from service.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--countries``, ``--levels`` and ``--schema``."""
    parser.add_argument("--countries", type=_codes, default=(), metavar="ISO3,...",
                        help="GADM: load these countries' files (one fetch each, in "
                             "parallel), e.g. NPL,DZA")
    parser.add_argument("--levels", type=parse_levels, default=(), metavar="LEVELS",
                        help="load only these levels, e.g. 0-2 or 0,1,3 (GADM)")
    parser.add_argument("--schema", default=None, metavar="NAME",
                        help="publish into this schema (created if missing), same table names")


def options(args: argparse.Namespace, datasets: list[Dataset],
            settings: Settings) -> dict[str, LoadOptions]:
    """Each dataset's options, fixed now from the arguments and this process's settings."""
    from service.fetch.releases import release_for

    return {d.name: resolve(d, settings, levels=args.levels, schema=args.schema,
                            countries=args.countries, release=release_for(d, settings))
            for d in datasets}


def _codes(text: str) -> tuple[str, ...]:
    return tuple(code for code in text.replace(" ", ",").split(",") if code)
