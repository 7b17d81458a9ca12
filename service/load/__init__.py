"""Load a planned layer into its staging table: plan it, copy its chunks, build its indexes.

- :mod:`~service.load.plan`: a layer checked against the catalog and cut into chunks;
- :mod:`~service.load.chunk`: one chunk read, repaired and COPYed (read → repair → copy);
- :mod:`~service.load.columns`: the target table's columns, and the schema's drift;
- :mod:`~service.load.copy`: binary COPY of Arrow batches;
- :mod:`~service.load.staging`: staging tables, their indexes; :mod:`~service.load.names`
  the names geoload derives for them;
- :mod:`~service.load.budget` and :mod:`~service.load.memory`: what bounds a worker's memory.

Nothing here knows the ledger or a message: the pipeline's steps call it.
"""
