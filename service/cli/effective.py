"""``geoload settings``: every setting as this process sees it, and where it came from.

Values come from :func:`service.settings.effective`: the environment, else ``.env`` in
the working directory, else the default; passwords and the dashboard token are masked.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from service import cli
from service import settings as config


def build_parser(prog: str = "geoload settings",
                 epilog: str | None = None) -> argparse.ArgumentParser:
    parser = cli.parser(prog, "Print every setting, its value and its source (environment, "
                        ".env in the working directory, or default); passwords masked.", epilog)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def run(args: argparse.Namespace) -> int:
    shown = config.effective()
    if args.json:
        print(json.dumps([asdict(s) for s in shown], indent=2))
        return cli.EXIT_OK
    width = max(len(s.env) for s in shown)
    for s in shown:
        print(f"{s.env:<{width}}  {s.value or '(empty)'}  [{s.source}]")
    return cli.EXIT_OK
