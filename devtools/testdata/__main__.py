"""``python -m devtools.testdata generate ROOT [--size …]`` / ``serve ROOT [--port …]``."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from devtools.testdata.mirror import GADM_URL, SIZES, generate, mirror_path, timezone_url


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it."""
    parser = argparse.ArgumentParser(prog="python -m devtools.testdata",
                                     description="Generate and serve upstream-like test data.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write GADM and timezone files under ROOT")
    gen.add_argument("root", type=Path)
    gen.add_argument("--size", choices=list(SIZES), default="small")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--timezone-release", default="2026c")
    srv = sub.add_parser("serve", help="serve ROOT over HTTP (Ctrl-C stops)")
    srv.add_argument("root", type=Path)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.command == "generate":
        return _generate(args.root, args.size, args.seed, args.timezone_release)
    return _serve(args.root, args.host, args.port)


def _generate(root: Path, size: str, seed: int, release: str) -> int:
    targets = [root / mirror_path(GADM_URL), root / mirror_path(timezone_url(release))]
    before = [_mtime(p) for p in targets]
    started = time.monotonic()
    m = generate(root, size=size, timezone_release=release, seed=seed)
    took = time.monotonic() - started
    fresh = sum(_mtime(p) != old for p, old in zip(targets, before, strict=True))
    g, t = m.gadm, m.timezone
    print(f"{size} data under {root}: {fresh} file(s) generated, {2 - fresh} reused "
          f"from cache, {took:.1f} s")
    print(f"  {g.path}  {g.size / 1e6:.1f} MB  sha256 {g.sha256}")
    print(f"    {g.total_features} features, {sum(g.vertices.values())} vertices, "
          f"{sum(g.invalid.values())} invalid; per layer: "
          + ", ".join(f"{k}={v}" for k, v in g.features.items()))
    print(f"  {t.path}  {t.size / 1e6:.1f} MB  sha256 {t.sha256}")
    print(f"    {t.features} zones ({t.polygons} Polygon, {t.multipolygons} MultiPolygon), "
          f"{t.vertices} vertices, {t.invalid} invalid, {t.holes} with holes")
    print("  mirrors:")
    for url in (GADM_URL, timezone_url(release)):
        print(f"    {url}\n      -> <mirror>/{m.urls[url]}")
    return 0


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _serve(root: Path, host: str, port: int) -> int:
    from devtools.testdata.server import serve

    if not root.is_dir():
        print(f"{root} is not a directory", file=sys.stderr)
        return 2
    with serve(root, host=host, port=port) as server:
        print(f"serving {server.root} at {server.url} (Ctrl-C to stop)")
        for path in sorted(p for p in server.root.rglob("*.zip") if p.is_file()):
            print(f"  {server.url_for(path)}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
