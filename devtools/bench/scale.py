"""``python -m devtools.bench.scale``: one GADM load at upstream's scale, as a user runs it.

The ``world`` size is GADM 4.1's: 400,172 features in its per-level counts, about 159
vertices per feature (64 M in all). It is generated once (about 2.5 minutes) and kept
under ``--data``, served on 127.0.0.1 at upstream's path, and loaded with ``--workers``
processes of ``--threads`` threads from an empty cache. Printed: the load's time (first
message to published, download included), each worker's peak RSS, and the disk the
host's cache took (the zip and the GeoPackage extracted from it), the figures the
README and docs/benchmark.md give. It is a benchmark, not a test: run it on a quiet
machine::

    python -m devtools.bench.scale --size world --workers 2 --json artifacts/scale.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from devtools.bench import peers, runner
from devtools.testdata.mirror import SIZES, generate
from devtools.testdata.server import serve
from service import cli
from service import settings as config

#: A worker process's peak must stay under this (docs/guarantees.md, Time limits and chunk size).
RSS_LIMIT = 400 * 2**20


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devtools.bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="world", choices=list(SIZES),
                   help="generated data size (default: world, GADM 4.1's scale)")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--threads", type=int, default=2, help="threads per worker process")
    p.add_argument("--data", type=Path,
                   help="where generated data is kept (default: GEOLOAD_CACHE_DIR/bench-data-SIZE)")
    p.add_argument("--database", default="geoload_bench", help="database to load into")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    base = config.get()
    settings = runner.bench_settings(base, args.database)
    root = args.data or base.cache_dir / f"bench-data-{args.size}"
    manifest = generate(root, size=args.size, timezone_release=settings.timezone_release)
    work = peers.scratch()
    try:
        with serve(root) as server:
            timed = runner.geoload_once(replace(settings, mirror=server.url), "gadm",
                                        args.workers, args.threads, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = summary(manifest.gadm, timed)
    print(render(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return cli.EXIT_OK if figures["under_rss_limit"] else cli.EXIT_FAILED


def summary(gadm: Any, timed: runner.Timed) -> dict[str, Any]:
    """The run's figures beside what was loaded."""
    return {
        "features": gadm.total_features, "features_per_layer": gadm.features,
        "vertices": sum(gadm.vertices.values()), "zip_bytes": gadm.size,
        "workers": timed.processes, "threads": timed.threads,
        "seconds": round(timed.seconds, 2), "wall_seconds": round(timed.wall, 2),
        "cpu_seconds": round(timed.cpu, 1) if timed.cpu is not None else None,
        "peak_rss_mb": [round(p / 2**20) for p in timed.peaks],
        "cache_mb": round(timed.cache_bytes / 2**20), "cache_bytes": timed.cache_bytes,
        "under_rss_limit": bool(timed.peaks) and max(timed.peaks) < RSS_LIMIT,
        "timed": asdict(timed),
    }


def render(f: dict[str, Any]) -> str:
    levels = " / ".join(f"{n:,}" for n in f["features_per_layer"].values())
    return "\n".join([
        f"gadm: {f['features']:,} features ({levels}), "
        f"{f['vertices'] / 1e6:.1f} M vertices ({f['vertices'] / f['features']:.0f} per "
        f"feature), zip {f['zip_bytes'] / 2**20:,.0f} MB",
        f"{f['workers']} worker processes x {f['threads']} threads: {f['seconds']:.1f} s from the "
        f"first message to published ({f['wall_seconds']:.1f} s from enqueue), machine busy "
        f"CPU {f['cpu_seconds']} s",
        f"peak RSS per worker: {', '.join(f'{mb} MB' for mb in f['peak_rss_mb'])} "
        f"({'under' if f['under_rss_limit'] else 'NOT under'} {RSS_LIMIT // 2**20} MB)",
        f"cache disk used: {f['cache_mb']:,} MB (the zip and the GeoPackage extracted from it)",
    ])


if __name__ == "__main__":
    sys.exit(cli.run(main))
