"""geopandas, as its documentation shows: ``read_file`` (pyogrio) → ``make_valid`` →
``to_postgis``, one layer in memory at a time."""

from __future__ import annotations

from typing import Any

import geopandas
import numpy as np
import shapely
import sqlalchemy

from devtools.bench.peers.job import Job

_POLYGON = 3
_COLLECTIONS = (4, 5, 6, 7)  # Multi* and GeometryCollection


def load(job: Job, schema: str) -> None:
    engine = sqlalchemy.create_engine(sqlalchemy_url(job.settings.database_url))
    try:
        for layer in job.layers:
            frame = geopandas.read_file(job.source, layer=layer.name, engine="pyogrio")
            frame.columns = [c.lower() for c in frame.columns]
            valid = as_multipolygons(frame.geometry.make_valid().to_numpy())
            frame = frame.set_geometry(geopandas.GeoSeries(valid, crs=frame.crs,
                                                           index=frame.index))
            frame = frame.rename_geometry("geom")
            frame.to_postgis(layer.table_name, engine, schema=schema, index=False)
    finally:
        engine.dispose()


def sqlalchemy_url(database_url: str) -> str:
    """SQLAlchemy's spelling of the URL, through psycopg 3 (the driver geoload uses)."""
    return "postgresql+psycopg://" + database_url.split("://", 1)[1]


def as_multipolygons(geoms: Any) -> Any:
    """Each geometry's polygons as one MultiPolygon: ``make_valid`` may return a Polygon,
    or a collection holding lines too, and the column is geometry(MultiPolygon)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    while (nested := np.isin(shapely.get_type_id(parts), _COLLECTIONS)).any():
        inner, inner_owner = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], inner])
        owner = np.concatenate([owner[~nested], owner[nested][inner_owner]])
    keep = shapely.get_type_id(parts) == _POLYGON
    order = np.argsort(owner[keep], kind="stable")
    out = np.full(len(geoms), None, dtype=object)
    return shapely.multipolygons(parts[keep][order], indices=owner[keep][order], out=out)
