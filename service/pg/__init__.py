"""PostgreSQL/PostGIS access: connections, geoload's own tables, staging, COPY."""
