"""DuckDB spatial into PostGIS: ``ST_Read`` → ``ST_MakeValid`` → WKB over the postgres
extension, and PostGIS turns the blob into geometry(MultiPolygon,4326), all timed.

The extensions come from the ``duckdb-ext-spatial`` and ``duckdb-ext-postgres`` wheels'
folder, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

from devtools.bench.peers.job import Job


def extension_directory() -> Path:
    """Where the wheels put ``extensions/v<version>/<platform>/*.duckdb_extension``."""
    import duckdb_ext  # a namespace package: no __file__

    return Path(next(iter(duckdb_ext.__path__))) / "extensions"


def load(job: Job, schema: str) -> None:
    con = duckdb.connect()
    try:
        con.execute(f"SET extension_directory = '{extension_directory()}'")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("LOAD spatial")
        con.execute("LOAD postgres")
        con.execute(f"ATTACH '{job.settings.database_url}' AS pg (TYPE postgres)")
        for layer in job.layers:
            read = f"ST_Read('{job.source}', layer := '{layer.name}')"
            described = con.execute(f"DESCRIBE SELECT * FROM {read}")  # noqa: S608 - catalog
            fields = [row[0] for row in described.fetchall() if row[0] != "geom"]
            select = ", ".join(f'"{f}" AS "{f.lower()}"' for f in fields)
            con.execute(f'CREATE TABLE pg."{schema}"."{layer.table_name}_wkb" AS SELECT '  # noqa: S608
                        f"{select}, ST_AsWKB(ST_MakeValid(geom))::BLOB AS wkb FROM {read}")
            _to_postgis(job, schema, layer.table_name, [f.lower() for f in fields])
    finally:
        con.close()


def _to_postgis(job: Job, schema: str, table: str, fields: list[str]) -> None:
    """The WKB staging table → the final table with a typed geometry and its GiST index."""
    stage, final = sql.Identifier(schema, f"{table}_wkb"), sql.Identifier(schema, table)
    columns = sql.SQL(", ").join(sql.Identifier(f) for f in fields)
    with psycopg.connect(job.settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL(
            "CREATE TABLE {} AS SELECT {}, ST_Multi(ST_CollectionExtract("
            "ST_GeomFromWKB(wkb, 4326), 3))::geometry(MultiPolygon,4326) AS geom FROM {}"
        ).format(final, columns, stage))
        conn.execute(sql.SQL("DROP TABLE {}").format(stage))
        conn.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(final))
