"""``geoload.lookup(lon, lat)``: the point lookup users call from their own SQL.

Part of the ledger's versioned schema (:mod:`service.ledger.schema` runs this DDL when
its version changes): the functions live in schema ``geoload``, whose DDL is the ledger's
alone. They are the lookup's public SQL face: one implementation serves every face, the
CLI, the API and :func:`service.lookup.lookup_many` all *call* ``geoload.lookup_many``
(a call, not bookkeeping), so an answer can't differ between them.

``geoload.lookup(lon double precision, lat double precision)`` returns a row set, one row
per area the point is in::

    dataset | source        | level | key       | name         | on_border
    --------+---------------+-------+-----------+--------------+----------
    gadm    | gadm.adm_0    |     0 | CHE       | Switzerland  | f
    gadm    | gadm.adm_1    |     1 | CHE.20_1  | Zürich       | f
    timezone| timezone.tim… |     0 | Europe/Zurich |          | f

Rows rather than one jsonb value, because rows join: ``SELECT p.id, l.key FROM places p,
geoload.lookup(p.lon, p.lat) l WHERE l.source = 'timezone.timezones'`` gives each
place's zone, and ``WHERE l.level = 1`` its province. A point in no area gives no rows; a
point on a shared border gives a row for every area it touches, each with ``on_border``
true; lon/lat outside [-180, 180] × [-90, 90] raise SQLSTATE 22023 (invalid parameter).
``geoload.lookup_many(lons float8[], lats float8[], datasets text[] DEFAULT NULL)`` answers
many points in one call and adds ``i``, the 1-based position of the point in the arrays;
``datasets`` keeps only those datasets' lookup tables (e.g. ``ARRAY['timezone']``).

The tables it reads are found at each call (``geoload lookup`` comments on tables
outside the staging and archive schemas), so lookup follows whatever is loaded and
published, and its body names no table: a swap is never blocked by it.
"""

from __future__ import annotations

#: Both functions; ``{registry}`` is where the query finding the lookup tables goes.
_TEMPLATE = """
CREATE OR REPLACE FUNCTION geoload.lookup_many(lons double precision[], lats double precision[],
                                               datasets text[] DEFAULT NULL)
RETURNS TABLE (i bigint, dataset text, source text, level int, key text, name text,
               on_border boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- JIT compiled every batch's query anew: 400 ms per call, more than 5,000 probes cost.
SET jit = off
-- The batch's rows are sorted to drop duplicates; in memory, not spilled to disk.
SET work_mem = '64MB'
-- A big batch joins the pieces by cell in a hash (145,000 points/s on the benchmark's
-- time zones); a merge join walked the cell index in random heap order, 2-3 times slower.
SET enable_mergejoin = off
AS $fn$
DECLARE
    parts text[] := '{}';
    reg record;
    n int;
    col text;
    rw text;
    on_line text;
BEGIN
    IF cardinality(lons) IS DISTINCT FROM cardinality(lats) THEN
        RAISE EXCEPTION 'lons and lats have different lengths (% and %)',
            cardinality(lons), cardinality(lats) USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(lons, lats) p(x, y)
               WHERE x IS NULL OR y IS NULL OR NOT (x BETWEEN -180 AND 180)
                  OR NOT (y BETWEEN -90 AND 90)) THEN
        RAISE EXCEPTION 'a point is outside lon/lat bounds (lon in [-180, 180], lat in [-90, 90])'
            USING ERRCODE = '22023',
                  HINT = 'pass longitude first, then latitude, in degrees (EPSG:4326)';
    END IF;
    FOR reg IN {registry} LOOP
        CONTINUE WHEN datasets IS NOT NULL
                      AND NOT ((reg.meta::jsonb)->>'dataset') = ANY (datasets);
        n := 2 ^ ((reg.meta::jsonb)->>'grid_level')::int;
        col := format('(p.x + 180) / %s', 360.0 / n);
        rw := format('(p.y + 90) / %s', 180.0 / n);
        on_line := format('(%1$s = floor(%1$s) OR %2$s = floor(%2$s))', col, rw);
        -- A point strictly inside a cell can only be in that cell's pieces: a hash join
        -- on the cell number (_ST_Intersects: no GiST probe per point as well). A point
        -- on a grid line (rare) probes the GiST index.
        parts := parts || format(
            'SELECT p.i, t.source, t.key, %1$L::text AS dataset, t.level::int, t.name '
            'FROM p JOIN %2$s t ON t.cell = floor(%3$s)::int * %4$s + floor(%5$s)::int '
            'WHERE NOT %6$s AND _ST_Intersects(t.geom, p.g) '
            'UNION ALL '
            'SELECT p.i, l.source, l.key, %1$L::text, l.level::int, l.name '
            'FROM p CROSS JOIN LATERAL (SELECT t.source, t.level, t.key, t.name FROM %2$s t '
            'WHERE ST_Intersects(t.geom, p.g)) l WHERE %6$s',
            (reg.meta::jsonb)->>'dataset', reg.tbl, col, n, rw, on_line);
    END LOOP;
    IF cardinality(parts) = 0 THEN
        RETURN;
    END IF;
    -- A point on the cut between two pieces of one area hits it twice: DISTINCT. A point
    -- that touches two areas of one source is on their shared border. Columns in the
    -- order (i, source, key) so one sort serves DISTINCT, the window and ORDER BY.
    RETURN QUERY EXECUTE
        'WITH p AS MATERIALIZED (SELECT x, y, i, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g '
        '                        FROM unnest($1, $2) WITH ORDINALITY u(x, y, i)) '
        'SELECT h.i, h.dataset, h.source, h.level, h.key, h.name, '
        '       count(*) OVER (PARTITION BY h.i, h.source) > 1 '
        'FROM (SELECT DISTINCT * FROM (' || array_to_string(parts, ' UNION ALL ') || ') u) h '
        'ORDER BY h.i, h.source, h.key'
        USING lons, lats;
END
$fn$;

CREATE OR REPLACE FUNCTION geoload.lookup(lon double precision, lat double precision)
RETURNS TABLE (dataset text, source text, level int, key text, name text, on_border boolean)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT dataset, source, level, key, name, on_border
    FROM geoload.lookup_many(ARRAY[lon], ARRAY[lat])
$fn$;

COMMENT ON FUNCTION geoload.lookup(double precision, double precision) IS
    'Areas (time zone of every loaded variant, GADM level by level) at lon/lat (EPSG:4326).';
"""


def functions() -> str:
    """The DDL of both functions, built when the schema's version changes rather than at
    import: the registry query lives in the lookup package, whose import (shapely, numpy)
    every command that only checks the schema's version would otherwise pay."""
    from service.lookup.model import REGISTRY_SQL

    return _TEMPLATE.replace("{registry}", REGISTRY_SQL.strip())
