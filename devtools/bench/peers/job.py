"""One dataset's file as every peer gets it, and what peers share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from service import catalog
from service.catalog.model import SOURCE_FID, Layer
from service.settings import Settings


@dataclass(frozen=True)
class Job:
    """One dataset's file, as each peer may want it."""

    dataset: str
    #: The zip on disk, and the URL the benchmark's server gives it (geoload fetches it there).
    archive: Path
    url: str
    #: What ogr2ogr alone reads: a zipped shapefile through /vsizip/, or the extracted
    #: GeoPackage.
    source: str
    settings: Settings
    work: Path

    @property
    def layers(self) -> tuple[Layer, ...]:
        return catalog.get(self.dataset).layers

    @property
    def shapefile(self) -> bool:
        return catalog.get(self.dataset).source.member.endswith(".shp")


def fresh_schema(settings: Settings, schema: str) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def join_keys(layer: Layer) -> tuple[str, ...]:
    """The columns geoload B-tree indexes on ``layer``: its key (unless the source's fid) and
    the join keys."""
    key = () if layer.key == SOURCE_FID else (layer.key,)
    return tuple(dict.fromkeys((*key, *layer.indexes)))
