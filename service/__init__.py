"""geoload: fetch standard spatial datasets and load them into PostGIS, atomically.

The library, one package per concept:

- the stages, which know neither the ledger nor any message: :mod:`service.catalog` →
  :mod:`service.fetch` → :mod:`service.read` → :mod:`service.repair` → :mod:`service.load`
  → :mod:`service.publish`; beside them :mod:`service.lookup` (the pieces each chunk cuts,
  the lookup table, point lookup) and :mod:`service.changes` (what a release changed,
  compared before the swap);
- :mod:`service.ledger`: the only code with SQL on ``geoload.*`` (the durable record);
  :mod:`service.live`: live progress and heartbeats in Redis;
- :mod:`service.pipeline`: the only code that knows message names or sends them; one
  module per step (ledger + stage + what comes next) and one dispatch table;
- the faces: :mod:`service.cli` (``python -m service.enqueue``, ``status``, ``datasets``,
  ``wait``), ``python -m service.lookup`` and :mod:`service.dashboard`.

``actors/`` is the thin Dramatiq layer over :mod:`service.pipeline.steps`; ``devtools/``
(benchmark, test data) is not installed.
"""
