"""``python -m service.datasets``: the catalog, with sources, layers and licences."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from service import catalog, cli
from service import settings as config
from service.fetch.mirror import source_url
from service.urls import mask


def build_parser(prog: str = "python -m service.datasets",
                 epilog: str | None = None) -> argparse.ArgumentParser:
    """The options, shared by ``python -m service.datasets`` and ``geoload datasets``."""
    parser = cli.parser(prog, "List the datasets geoload can load.", epilog)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    settings = config.get()
    entries: list[dict[str, Any]] = [{
        "name": d.name, "title": d.title, "url": d.url(settings),
        "fetched_from": mask(source_url(d, settings)), "member": d.source.member,
        "release": d.release(settings), "licence": d.licence, "homepage": d.homepage,
        "layers": [{"layer": layer.name, "table": layer.table, "key": layer.key,
                    "fields": [f.name for f in layer.fields]} for layer in d.layers],
    } for d in catalog.DATASETS.values()]
    if args.json:
        print(json.dumps(entries, indent=2))
        return cli.EXIT_OK
    for e in entries:
        print(f"{e['name']}: {e['title']}")
        print(f"  source:  {e['url']}" + (f"  (release {e['release']})" if e["release"] else ""))
        if e["fetched_from"] != e["url"]:
            print(f"  mirror:  {e['fetched_from']}")
        print(f"  licence: {e['licence']}")
        for layer in e["layers"]:
            print(f"  {layer['layer']:<32} → {layer['table']}  (key {layer['key']})")
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
