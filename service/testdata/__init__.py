"""Realistic stand-ins for upstream data (GADM, timezone boundaries) and a local HTTP server.

There is no internet in tests and benchmarks, so this package generates files shaped like
the real ones, lays them out at upstream's URL paths, and serves them with fault injection.
"""

from service.testdata.gadm import GadmManifest, make_gadm_levels_zip
from service.testdata.mirror import (
    GADM_URL,
    SIZES,
    TIMEZONE_URL,
    Manifest,
    generate,
    mirror_path,
    timezone_url,
)
from service.testdata.server import DataServer, Request, serve
from service.testdata.timezone import TimezoneManifest, make_timezone_zip

__all__ = [
    "GADM_URL",
    "SIZES",
    "TIMEZONE_URL",
    "DataServer",
    "GadmManifest",
    "Manifest",
    "Request",
    "TimezoneManifest",
    "generate",
    "make_gadm_levels_zip",
    "make_timezone_zip",
    "mirror_path",
    "serve",
    "timezone_url",
]
