"""A directory laid out like upstream, so a mirror that swaps scheme+host serves it.

``https://geodata.ucdavis.edu/gadm/gadm4.1/gadm_410-levels.zip`` lives at
``<root>/gadm/gadm4.1/gadm_410-levels.zip``; the timezone release asset at
``<root>/evansiroky/timezone-boundary-builder/releases/download/{tag}/…``. Generation is
cached: a ``<file>.manifest.json`` beside each file records the parameters it was made with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devtools.testdata.gadm import GadmManifest, make_gadm_levels_zip
from devtools.testdata.timezone import TimezoneManifest, make_timezone_zip

GADM_URL = "https://geodata.ucdavis.edu/gadm/gadm4.1/gadm_410-levels.zip"
TIMEZONE_URL = ("https://github.com/evansiroky/timezone-boundary-builder/releases/download/"
                "{tag}/timezones-with-oceans.shapefile.zip")
GENERATOR_VERSION = 3  # bump when output changes, so cached files are regenerated


@dataclass(frozen=True)
class Size:
    """Parameters of a named data-set size."""

    features: int
    zones: int
    vertices: int
    vertex_scale: float = 1.0


SIZES: dict[str, Size] = {
    "tiny": Size(features=300, zones=12, vertices=20_000),  # unit tests, well under 1 s
    "small": Size(features=3_000, zones=60, vertices=300_000),  # end-to-end tests, ~1 s
    "bench": Size(features=150_000, zones=445, vertices=8_000_000),  # ~120 vertices/feature
    # The benchmark's default: GADM's density (at least 150 vertices per feature, as the
    # real file's 36 M over 191,367 features in issue 17), 150,000 features over six levels.
    "dense": Size(features=150_000, zones=445, vertices=8_000_000, vertex_scale=1.3),
    # GADM 4.1's scale: 400,172 features in its per-level counts (REAL_COUNTS), about 159
    # vertices per feature (at least 150 asked for), 64 M in all; ~2.5 min, ~1 GB.
    "world": Size(features=400_172, zones=445, vertices=8_000_000, vertex_scale=1.3),
}


@dataclass
class Manifest:
    """Both generated files and where a mirror serves them."""

    root: Path
    size: str
    timezone_release: str
    gadm: GadmManifest
    timezone: TimezoneManifest

    @property
    def urls(self) -> dict[str, str]:
        """Upstream URL -> path relative to ``root`` (also the URL path on a mirror)."""
        return {GADM_URL: mirror_path(GADM_URL),
                timezone_url(self.timezone_release): mirror_path(
                    timezone_url(self.timezone_release))}

    def mirror_url(self, base: str, upstream_url: str) -> str:
        """Where a server at ``base`` (e.g. ``http://127.0.0.1:8000``) serves that file."""
        return base.rstrip("/") + "/" + mirror_path(upstream_url)


def timezone_url(tag: str) -> str:
    """Upstream URL of the timezones-with-oceans shapefile for release ``tag``."""
    return TIMEZONE_URL.format(tag=tag)


def mirror_path(upstream_url: str) -> str:
    """The upstream URL's path without its leading slash: scheme and host are dropped."""
    return urlsplit(upstream_url).path.lstrip("/")


def generate(root: Path, *, size: str = "small", timezone_release: str = "2026c",
             seed: int = 1) -> Manifest:
    """Generate (or reuse cached) GADM and timezone files under ``root`` at upstream paths."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    root = Path(root)
    gadm_path = root / mirror_path(GADM_URL)
    tz_path = root / mirror_path(timezone_url(timezone_release))
    gadm_params = {"features": spec.features, "seed": seed, "vertex_scale": spec.vertex_scale}
    tz_params = {"zones": spec.zones, "vertices": spec.vertices, "seed": seed}
    gadm = _cached(gadm_path, gadm_params, GadmManifest.from_json)
    if gadm is None:
        gadm = make_gadm_levels_zip(gadm_path, features=spec.features, seed=seed,
                                    vertex_scale=spec.vertex_scale)
        _save(gadm_path, gadm_params, gadm.to_json())
    tz = _cached(tz_path, tz_params, TimezoneManifest.from_json)
    if tz is None:
        tz = make_timezone_zip(tz_path, zones=spec.zones, vertices=spec.vertices, seed=seed)
        _save(tz_path, tz_params, tz.to_json())
    return Manifest(root=root, size=size, timezone_release=timezone_release, gadm=gadm,
                    timezone=tz)


def manifest_path(path: Path) -> Path:
    """The cache record beside a generated file."""
    return path.with_name(path.name + ".manifest.json")


def _cached(path: Path, params: dict[str, Any], load: Any) -> Any:
    """The recorded manifest if ``path`` was generated with these parameters and is intact."""
    record = manifest_path(path)
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if (data.get("generator") != GENERATOR_VERSION or data.get("params") != params
            or data.get("manifest", {}).get("size") != stat.st_size
            or data.get("mtime_ns") != stat.st_mtime_ns):
        return None
    manifest = load({**data["manifest"], "path": str(path)})
    return manifest


def _save(path: Path, params: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Write the cache record atomically, after the file itself is complete."""
    record = manifest_path(path)
    data = {"generator": GENERATOR_VERSION, "params": params,
            "mtime_ns": path.stat().st_mtime_ns, "manifest": manifest}
    tmp = record.with_name(record.name + ".part")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, record)


def make_timezone_variants(root: Path, release: str, *, zones: int = 12,
                           vertices: int = 20_000) -> dict[str, TimezoneManifest]:
    """Every timezone-boundary-builder asset of ``release`` but the default one (which
    :func:`generate` writes), each with its own zones, at upstream's paths under ``root``."""
    from service.catalog.timezone import RELEASES_URL, VARIANTS

    made = {}
    for n, (name, (asset, *_)) in enumerate(VARIANTS.items()):
        if asset == "timezones-with-oceans":
            continue
        url = RELEASES_URL.format(release=release, asset=asset)
        made[name] = make_timezone_zip(root / mirror_path(url), zones=zones + n,
                                       vertices=vertices, seed=20 + n,
                                       stem="combined-shapefile" + asset.removeprefix("timezones"))
    return made
