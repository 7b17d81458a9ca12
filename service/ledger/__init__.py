"""The ledger: geoload's durable bookkeeping in PostGIS, and the only code with SQL on
``geoload.*``.

- :mod:`~service.ledger.schema`: the tables (created and upgraded in place);
- :mod:`~service.ledger.records`: the typed records it hands out;
- :mod:`~service.ledger.runs`, :mod:`~service.ledger.loads`, :mod:`~service.ledger.layers`,
  :mod:`~service.ledger.chunks`: a run, its loads, their layers and chunks;
- :mod:`~service.ledger.leftovers`: staging tables no unfinished load needs;
- :mod:`~service.ledger.refreshes`: the scheduled refresh's claims;
- :mod:`~service.ledger.status`: where a run stands; :mod:`~service.ledger.history`: what
  the dashboard shows of the past.
"""
