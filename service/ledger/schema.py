"""geoload's own tables: the durable record of runs, loads, layers, chunks and refreshes.

``geoload.loads`` is the provenance table (what was loaded, from where, when,
with which counts). ``geoload.chunks`` is the ledger that makes a chunk's
effect exactly-once: its row is locked, its rows are COPYed and it is marked
loaded in one transaction. ``geoload.refreshes`` holds the scheduled refresh's
claims. The lookup's SQL functions, ``geoload.lookup`` and ``geoload.lookup_many``
(:mod:`service.ledger.lookup`), are created with them: schema ``geoload`` has one author.
Live, fast-changing progress lives in Redis instead.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from service.errors import ConfigError
from service.ledger import lookup

DDL = """
CREATE SCHEMA IF NOT EXISTS geoload;
CREATE SCHEMA IF NOT EXISTS geoload_staging;

CREATE TABLE IF NOT EXISTS geoload.runs (
    run_id      text PRIMARY KEY,
    datasets    text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retry_of    text,
    origin      text NOT NULL DEFAULT 'cli'
);

CREATE TABLE IF NOT EXISTS geoload.loads (
    load_id       bigserial PRIMARY KEY,
    run_id        text NOT NULL REFERENCES geoload.runs ON DELETE CASCADE,
    dataset       text NOT NULL,
    status        text NOT NULL DEFAULT 'queued',
    release       text,
    source_url    text,
    etag          text,
    last_modified text,
    bytes         bigint,
    sha256        text,
    started_at    timestamptz,
    fetched_at    timestamptz,
    finished_at   timestamptz,
    layers_total  int,
    layers_ready  int NOT NULL DEFAULT 0,
    layers        jsonb,
    error         text,
    error_type    text,
    error_step    text,
    UNIQUE (run_id, dataset)
);
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS error_worker text;
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS error_attempts int;
-- Data warnings (schema drift, dropped features), and whether they fail the load instead.
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS warnings jsonb;
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS strict boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS loads_dataset_idx ON geoload.loads (dataset, finished_at DESC);
-- The order in which loads learnt their version from upstream (see ledger.fetch_order).
CREATE SEQUENCE IF NOT EXISTS geoload.fetch_order;
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS fetch_order bigint;
-- The run whose load, fetched later, was published instead of this one.
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS superseded_by text;
-- A download in progress: bytes so far and when they were counted.
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS download_bytes bigint;
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS download_at timestamptz;

-- Per dataset, the load whose tables are live: one locked row decides each publish.
CREATE TABLE IF NOT EXISTS geoload.live (
    dataset       text PRIMARY KEY,
    load_id       bigint NOT NULL,
    run_id        text NOT NULL,
    fetch_order   bigint,
    published_at  timestamptz NOT NULL
);
INSERT INTO geoload.live (dataset, load_id, run_id, fetch_order, published_at)
SELECT DISTINCT ON (dataset) dataset, load_id, run_id, fetch_order, finished_at
FROM geoload.loads WHERE status = 'published' AND finished_at IS NOT NULL
ORDER BY dataset, finished_at DESC
ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS geoload.load_layers (
    load_id        bigint NOT NULL REFERENCES geoload.loads ON DELETE CASCADE,
    layer          text NOT NULL,
    target_table   text NOT NULL,
    staging_table  text NOT NULL,
    driver         text NOT NULL,
    fid_column     text NOT NULL,
    columns        jsonb NOT NULL,
    source_count   bigint NOT NULL,
    chunks_total   int NOT NULL,
    chunks_done    int NOT NULL DEFAULT 0,
    loaded         bigint NOT NULL DEFAULT 0,
    empty          bigint NOT NULL DEFAULT 0,
    repaired       bigint NOT NULL DEFAULT 0,
    parts_dropped  bigint NOT NULL DEFAULT 0,
    status         text NOT NULL DEFAULT 'loading',
    table_bytes    bigint,
    index_seconds  double precision,
    PRIMARY KEY (load_id, layer)
);
-- Features kept with geom NULL: no polygonal part after repair, outside lon/lat, bad WKB.
ALTER TABLE geoload.load_layers ADD COLUMN IF NOT EXISTS dropped bigint NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS geoload.chunks (
    load_id        bigint NOT NULL,
    layer          text NOT NULL,
    chunk_no       int NOT NULL,
    fid_first      bigint NOT NULL,
    fid_last       bigint NOT NULL,
    features       int NOT NULL,
    weight         bigint NOT NULL,
    status         text NOT NULL DEFAULT 'pending',
    loaded         int,
    empty          int,
    repaired       int,
    parts_dropped  int,
    attempts       int NOT NULL DEFAULT 0,
    worker         text,
    started_at     timestamptz,
    finished_at    timestamptz,
    seconds        double precision,
    error          text,
    PRIMARY KEY (load_id, layer, chunk_no),
    FOREIGN KEY (load_id, layer) REFERENCES geoload.load_layers ON DELETE CASCADE
);
-- Every failed attempt: [{attempt, worker, at, error}, ...]; ``error`` is the last one's.
ALTER TABLE geoload.chunks ADD COLUMN IF NOT EXISTS errors jsonb NOT NULL DEFAULT '[]';
-- A chunk's dropped features, written with its rows: a redelivery never counts them twice.
ALTER TABLE geoload.chunks ADD COLUMN IF NOT EXISTS dropped int;
ALTER TABLE geoload.chunks ADD COLUMN IF NOT EXISTS dropped_features jsonb;

-- The scheduled refresh's decisions to load, one per (dataset, version): see ledger.refreshes.
CREATE TABLE IF NOT EXISTS geoload.refreshes (
    dataset        text NOT NULL,
    version        text NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT now(),
    claimed_by     text NOT NULL,
    attempts       int NOT NULL DEFAULT 1,
    run_id         text,
    PRIMARY KEY (dataset, version)
);

-- Issue 13: a load's options, fixed at enqueue (release, URL, countries, levels, schema,
-- source), and the schema it publishes into (NULL: the catalog's). The live load is per
-- (dataset, schema): loads into different schemas never replace each other.
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS options jsonb;
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS target_schema text;
ALTER TABLE geoload.live ADD COLUMN IF NOT EXISTS target_schema text NOT NULL DEFAULT '';
ALTER TABLE geoload.live DROP CONSTRAINT IF EXISTS live_pkey;
ALTER TABLE geoload.live ADD PRIMARY KEY (dataset, target_schema);
-- Issue 13: a load from several files (GADM by country): each file's version, pinned by
-- the fetch of that part; a chunk names the part it reads.
CREATE TABLE IF NOT EXISTS geoload.load_parts (
    load_id       bigint NOT NULL REFERENCES geoload.loads ON DELETE CASCADE,
    part          text NOT NULL,
    source_url    text,
    etag          text,
    last_modified text,
    bytes         bigint,
    sha256        text,
    fetched_at    timestamptz,
    PRIMARY KEY (load_id, part)
);
ALTER TABLE geoload.chunks ADD COLUMN IF NOT EXISTS part text NOT NULL DEFAULT '';
-- Issue 13: earlier versions kept under geoload_archive (GEOLOAD_KEEP_VERSIONS), one row
-- per table of a kept version; a rollback is a load that restored another one.
CREATE SCHEMA IF NOT EXISTS geoload_archive;
CREATE TABLE IF NOT EXISTS geoload.archive (
    load_id        bigint NOT NULL,
    dataset        text NOT NULL,
    target_schema  text NOT NULL DEFAULT '',
    target_table   text NOT NULL,
    archive_table  text NOT NULL,
    release        text,
    archived_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (load_id, target_table)
);
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS restored_from bigint;

-- issue 15: the staging table a load's chunks cut their lookup pieces into (swapped in
-- with the data tables; dropped with the rest of staging).
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS lookup_staging text;
-- issue 15: what the lookup table cost: pieces, seconds, bytes (see ledger.loads.record_lookup).
ALTER TABLE geoload.loads ADD COLUMN IF NOT EXISTS lookup jsonb;
-- issue 15: each published load's change report (one row per load) and its changed keys.
CREATE TABLE IF NOT EXISTS geoload.change_reports (
    load_id     bigint PRIMARY KEY,
    dataset     text NOT NULL,
    first_load  boolean NOT NULL,
    counts      jsonb NOT NULL,
    seconds     double precision NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS geoload.changes (
    load_id          bigint NOT NULL REFERENCES geoload.change_reports ON DELETE CASCADE,
    source           text NOT NULL,
    change           text NOT NULL CHECK (change IN ('added', 'removed', 'renamed', 'reshaped')),
    key              text NOT NULL,
    fields           jsonb,
    area_before_km2  double precision,
    area_after_km2   double precision,
    symdiff_km2      double precision,
    PRIMARY KEY (load_id, source, change, key)
);
-- Every layer a report compared, in order, those without changes too (NULL: stored before).
ALTER TABLE geoload.change_reports ADD COLUMN IF NOT EXISTS layers text[];
"""

#: Bumped with every change to :data:`DDL`, which only ever adds (IF NOT EXISTS), or to
#: :func:`service.ledger.lookup.functions` (CREATE OR REPLACE); stored as the comment of
#: schema ``geoload`` so that ``ensure`` costs one query when current.
VERSION = "geoload bookkeeping, schema version 10"
#: Serializes schema creation across workers starting at once (and replacing the lookup
#: functions: two at once fail with "tuple concurrently updated").
_LOCK_KEY = 7_461_023


def ensure(conn: psycopg.Connection) -> None:
    """Create geoload's schemas and tables if missing; cheap when they exist."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        _ensure_postgis(conn)
        if _version(conn) != VERSION:
            conn.execute(DDL)
            conn.execute(lookup.functions())  # type: ignore[arg-type] # constants only
            conn.execute(sql.SQL("COMMENT ON SCHEMA geoload IS {}").format(sql.Literal(VERSION)))


def _version(conn: psycopg.Connection) -> str | None:
    row = conn.execute("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                       "WHERE nspname = 'geoload'").fetchone()
    return row[0] if row else None


def _ensure_postgis(conn: psycopg.Connection) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
        return
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        database = conn.info.dbname
        raise ConfigError(f"PostGIS is not installed in database {database!r} ({exc})".strip(),
                          hint=f"as a superuser run: CREATE EXTENSION postgis; in {database} "
                               "(Debian: apt-get install postgresql-15-postgis-3)") from exc
