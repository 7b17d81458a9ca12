"""The known places' files, loaded twice: by ogr2ogr as a user would (the cross-check), and
into staging tables that the lookup tables are built from and then published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.testdata.places import PlacesFiles, make_places_files
from service import lookup
from service.lookup import SourceTable
from service.settings import Settings
from tests.conftest import have, reset_database
from tests.support.ogr import OGR, ogr2ogr
from tests.support.places import Loaded

STAGING = "geoload_staging"
LEVELS = 3


def tz_sources() -> list[SourceTable]:
    return [SourceTable(f"{STAGING}.timezone__timezones__l1", "timezone.timezones", 0, "tzid")]


def gadm_sources() -> list[SourceTable]:
    return [SourceTable(f"{STAGING}.gadm__adm_{k}__l1", f"gadm.adm_{k}", k, f"gid_{k}",
                        "country" if k == 0 else f"name_{k}", name_label=f"name_{k}")
            for k in range(LEVELS)]


def publish(conn: psycopg.Connection, staging: str, live: str) -> None:
    """What the swap will do with a lookup table: move it into the dataset's schema."""
    schema, table = live.split(".")
    conn.execute(psycopg.sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
        psycopg.sql.Identifier(STAGING, staging), psycopg.sql.Identifier(schema)))
    conn.execute(psycopg.sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        psycopg.sql.Identifier(schema, staging), psycopg.sql.Identifier(table)))


@pytest.fixture(scope="package")
def places_files(tmp_path_factory: pytest.TempPathFactory) -> PlacesFiles:
    return make_places_files(tmp_path_factory.mktemp("places"))


@pytest.fixture(scope="package")
def staged(settings: Settings, places_files: PlacesFiles) -> Iterator[Loaded]:
    """The files in staging-like tables (and, for the cross-check, in ``places_ogr``)."""
    if not have("ogr2ogr"):
        pytest.skip("ogr2ogr (Debian's gdal-bin) is not installed")
    reset_database(settings.database_url)
    url = settings.database_url
    tz = f"/vsizip/{places_files.timezone_zip}/combined-shapefile-with-oceans.shp"
    gpkg = f"/vsizip/{places_files.gadm_zip}/gadm_410-levels.gpkg"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {OGR} CASCADE; CREATE SCHEMA {OGR}")
    ogr2ogr(url, tz, STAGING, name="timezone__timezones__l1")
    ogr2ogr(url, tz, OGR, name="timezones")
    for k in range(LEVELS):
        ogr2ogr(url, gpkg, STAGING, layer=f"ADM_{k}", name=f"gadm__adm_{k}__l1")
        ogr2ogr(url, gpkg, OGR, layer=f"ADM_{k}", name=f"adm_{k}")
    yield Loaded(places_files, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {OGR} CASCADE")


@pytest.fixture(scope="package")
def published(staged: Loaded) -> Loaded:
    """Lookup tables built from the staging tables in one transaction, then published."""
    with psycopg.connect(staged.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS gadm; CREATE SCHEMA IF NOT EXISTS timezone")
        with conn.transaction():
            lookup.build(conn, tz_sources(), f"{STAGING}.timezone_lookup__l1",
                         dataset="timezone")
            lookup.build(conn, gadm_sources(), f"{STAGING}.gadm_lookup__l1", dataset="gadm")
            publish(conn, "timezone_lookup__l1", "timezone.timezone_lookup")
            publish(conn, "gadm_lookup__l1", "gadm.gadm_lookup")
    return staged


def data_path() -> Path:
    return Path(__file__).resolve().parents[2] / "data" / "known_places.json"
