"""A change report as the dashboard's run and dataset pages show it.

The page gets the report's JSON (:meth:`~service.changes.ChangeReport.to_json`), one row
per changed key for its table (at most :data:`MAX_ROWS`), and, while the report's load is
the live one, a map preview per layer with the reshaped and added areas drawn over it
(``preview.svg?changes=1``): the retired tables are gone, so only the new shapes can be
drawn.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from service import catalog
from service.changes import ChangeReport

#: Rows of the changes table on a page; the JSON API has them all.
MAX_ROWS = 200


def view(report: ChangeReport | None, live_load_id: int | None) -> dict[str, Any] | None:
    """What a page shows of ``report``; None if there is none (a load not published)."""
    if report is None:
        return None
    data = report.to_json()
    rows = [row for layer in report.layers for row in _rows(layer)]
    data["rows"] = rows[:MAX_ROWS]
    data["more_rows"] = max(len(rows) - MAX_ROWS, 0)
    live = live_load_id == report.load_id
    ds = catalog.get(report.dataset)
    data["previews"] = [
        {"table": layer.source,
         "url": f"/datasets/{quote(ds.name)}/{quote(_layer_name(ds, layer.source))}"
                "/preview.svg?changes=1"}
        for layer in report.layers if live and (layer.reshaped or layer.added)
        and _layer_name(ds, layer.source)]
    return data


def highlighted(report: ChangeReport | None, table: str) -> list[str]:
    """The keys of ``table`` a preview draws as changed: reshaped and added."""
    if report is None:
        return []
    return sorted({key for layer in report.layers if layer.source == table
                   for key in (*layer.added, *(r.key for r in layer.reshaped))})


def _layer_name(ds: catalog.Dataset, table: str) -> str:
    return next((layer.name for layer in ds.layers if layer.table == table), "")


def _rows(layer: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    out += [{"source": layer.source, "change": "added", "key": k, "detail": ""}
            for k in layer.added]
    out += [{"source": layer.source, "change": "removed", "key": k, "detail": ""}
            for k in layer.removed]
    out += [{"source": layer.source, "change": "renamed", "key": r.key,
             "detail": "; ".join(f"{f}: {a or '—'} → {b or '—'}" for f, (a, b) in r.fields.items())}
            for r in layer.renamed]
    out += [{"source": layer.source, "change": "reshaped", "key": r.key,
             "detail": f"{_km2(r.area_before_km2)} → {_km2(r.area_after_km2)} km², "
                       f"{_km2(r.symdiff_km2)} km² changed"} for r in layer.reshaped]
    return out


def _km2(value: float | None) -> str:
    """An area, or a dash where a side had no geometry (a feature kept with geom NULL)."""
    return "—" if value is None else f"{value:,.1f}"
