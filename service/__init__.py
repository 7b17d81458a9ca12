"""geoload: fetch standard spatial datasets and load them into PostGIS, atomically.

The library: catalog → fetch → read → repair → load (COPY) → publish.
``actors/`` is the thin Dramatiq layer over :mod:`service.steps`.
"""
