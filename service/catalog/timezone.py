"""timezone-boundary-builder: IANA time zone boundaries, in six variants.

Each variant is an asset of the same release and a dataset of its own, loaded into a
table of its own, so that they can coexist: with or without the oceans' zones, as the
zones are today (``-now``: zones that agree since 1970 are merged) or since 1970.
"""

from __future__ import annotations

from service.catalog.model import Dataset, Field, Layer, Source

RELEASES_URL = ("https://github.com/evansiroky/timezone-boundary-builder/releases/download/"
                "{release}/{asset}.shapefile.zip")
#: dataset → (asset, table, what it holds, staging-name prefix). The prefix keeps every name
#: a load derives whole, the longest being the retired lookup table's index
#: (``tzl-70__timezone-land-1970_lookup__retired_l…_geom_idx``).
VARIANTS: dict[str, tuple[str, str, str, str]] = {
    "timezone": ("timezones-with-oceans", "timezones", "with oceans", "timezone"),
    "timezone-land": ("timezones", "timezones_land", "land only", "tz-land"),
    "timezone-now": ("timezones-with-oceans-now", "timezones_now",
                     "with oceans, zones that agree today merged", "tz-now"),
    "timezone-land-now": ("timezones-now", "timezones_land_now",
                          "land only, zones that agree today merged", "tzl-now"),
    "timezone-1970": ("timezones-with-oceans-1970", "timezones_1970",
                      "with oceans, zones that agree since 1970 merged", "tz-1970"),
    "timezone-land-1970": ("timezones-1970", "timezones_land_1970",
                           "land only, zones that agree since 1970 merged", "tzl-70"),
}


def variant(name: str) -> Dataset:
    """The dataset of one asset: its shapefile is ``combined-shapefile`` plus the asset's
    suffix (``timezones-with-oceans`` → ``combined-shapefile-with-oceans``)."""
    asset, table, holds, prefix = VARIANTS[name]
    return Dataset(
        name=name,
        title=f"IANA time zone boundaries, {holds} (timezone-boundary-builder)",
        source=Source(
            url=RELEASES_URL.replace("{asset}", asset),
            member="combined-shapefile*.shp",
            release_setting="timezone_release",
        ),
        layers=(
            Layer(
                name="combined-shapefile" + asset.removeprefix("timezones"),
                table=f"timezone.{table}",
                fields=(Field("tzid", key=True),),
                key="tzid",
                feature_key="tzid",
            ),
        ),
        licence="ODbL 1.0 (OpenStreetMap contributors)",
        homepage="https://github.com/evansiroky/timezone-boundary-builder",
        prefix=None if prefix == name else prefix,
        # The variants are loaded on request; once loaded, the refresh keeps them current.
        always_refreshed=name == "timezone",
    )


TIMEZONE = variant("timezone")
TIMEZONES = tuple(variant(name) for name in VARIANTS)
