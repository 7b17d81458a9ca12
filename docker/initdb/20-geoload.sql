-- Run once by the postgis image when the database volume is first initialised.
-- The image already adds PostGIS to POSTGRES_DB; this keeps it true if that changes,
-- and geoload's own tables are created by the workers (service/pg/schema.py).
CREATE EXTENSION IF NOT EXISTS postgis;
