"""timezone-boundary-builder: IANA time zone boundaries, oceans included."""

from __future__ import annotations

from service.catalog.model import Dataset, Field, Layer, Source

TIMEZONE = Dataset(
    name="timezone",
    title="IANA time zone boundaries with oceans (timezone-boundary-builder)",
    source=Source(
        url=("https://github.com/evansiroky/timezone-boundary-builder/releases/download/"
             "{release}/timezones-with-oceans.shapefile.zip"),
        member="combined-shapefile*.shp",
        release_setting="timezone_release",
    ),
    layers=(
        Layer(
            name="combined-shapefile-with-oceans",
            table="timezone.timezones",
            fields=(Field("tzid", key=True),),
            # The table is documented as (tzid, geom): a field upstream adds is reported,
            # not loaded, so the table keeps the shape its users query.
            keep_other_fields=False,
            key="tzid",
            feature_key="tzid",
        ),
    ),
    licence="ODbL 1.0 (OpenStreetMap contributors)",
    homepage="https://github.com/evansiroky/timezone-boundary-builder",
)
