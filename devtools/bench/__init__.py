"""``python -m devtools.bench``: geoload against ogr2ogr and the raw COPY floor, in one run.

Every way loads the same files into the same PostgreSQL; medians of several runs are
printed with ratios and peak RSS, and written as JSON with ``--json``.
"""
