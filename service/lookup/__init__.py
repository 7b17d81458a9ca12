"""Point lookup: which time zone and which admin areas is a point in?

At publish, :func:`build` cuts a dataset's staging tables into a lookup table (subdivided,
GiST-indexed pieces carrying the keys) that is swapped in with the data tables. Then
:func:`lookup` / :func:`lookup_many` (and ``geoload.lookup(lon, lat)`` in SQL, and
``python -m service.lookup``) answer from every published lookup table::

    from service.lookup import SourceTable, build, lookup
    build(conn, [SourceTable("geoload_staging.timezone__timezones__l7", "timezone.timezones",
                             0, "tzid")], "geoload_staging.timezone__lookup__l7",
          dataset="timezone")
    # ... swapped in as timezone.timezones_lookup, then:
    lookup(conn, 47.6964, 8.6903).keys("timezone.timezones")  # ['Europe/Busingen']
"""

from service.lookup.build import (
    DEFAULT_GRID_LEVEL,
    DEFAULT_MAX_VERTICES,
    build,
    index_table,
    register,
    registered,
    sizes,
)
from service.lookup.catalog import (
    create_staging,
    gadm_sources,
    lookup_table,
    sources,
    staging_table,
    timezone_sources,
)
from service.lookup.model import (
    Answer,
    BadPoint,
    BuildStats,
    Hit,
    Registered,
    SourceTable,
    Unindexed,
)
from service.lookup.query import BATCH, check_point, lookup, lookup_many

__all__ = [
    "BATCH",
    "DEFAULT_GRID_LEVEL",
    "DEFAULT_MAX_VERTICES",
    "Answer",
    "BadPoint",
    "BuildStats",
    "Hit",
    "Registered",
    "SourceTable",
    "Unindexed",
    "build",
    "create_staging",
    "index_table",
    "check_point",
    "gadm_sources",
    "lookup",
    "lookup_many",
    "lookup_table",
    "register",
    "registered",
    "sizes",
    "sources",
    "staging_table",
    "timezone_sources",
]
