"""What a new release changed, computed by key before the old tables are dropped.

Wiring into the publish is two calls, before the swap renames the live tables out::

    from service import changes
    report = changes.compare(conn, ds.name, load_id, [
        changes.Compared("gadm.adm_1", "geoload_staging.gadm__adm_1__l17", "gid_1",
                         ("name_1", "varname_1", "nl_name_1")), ...])
    ledger.changes.save(conn, report)   # geoload.change_reports + geoload.changes
    print(changes.text(ledger.changes.load(conn, 17)))   # status RUN_ID --changes

:func:`compared_layers` builds that list from a catalog dataset.
"""

from service.changes.catalog import compared_layers, key_of
from service.changes.compute import compare
from service.changes.model import ChangeReport, Compared, LayerChanges, Renamed, Reshaped
from service.changes.output import text

__all__ = [
    "ChangeReport",
    "Compared",
    "LayerChanges",
    "Renamed",
    "Reshaped",
    "compare",
    "compared_layers",
    "key_of",
    "text",
]
