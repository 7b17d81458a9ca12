"""A change report as a person reads it: for ``status RUN_ID --changes`` and the dashboard.

The JSON form is :meth:`~service.changes.model.ChangeReport.to_json`.
"""

from __future__ import annotations

from service.changes.model import ChangeReport, LayerChanges

#: Keys listed per kind of change before "and N more".
SHOWN = 10


def text(report: ChangeReport | None, *, shown: int = SHOWN) -> str:
    """The summary line, then per layer its counts and the keys that changed."""
    if report is None:
        return "no change report was computed for this load"
    lines = [report.summary()]
    for layer in report.layers:
        counts = ", ".join(f"{n} {kind}" for kind, n in layer.counts().items())
        lines.append(f"  {layer.source}: {counts}")
        lines += [f"    {row}" for row in _rows(layer, shown)]
    return "\n".join(lines)


def _rows(layer: LayerChanges, shown: int) -> list[str]:
    rows = [*(f"added    {k}" for k in layer.added[:shown]),
            *(f"removed  {k}" for k in layer.removed[:shown]),
            *(f"renamed  {r.key}: " + "; ".join(f"{f} {a!r} -> {b!r}"
                                               for f, (a, b) in r.fields.items())
              for r in layer.renamed[:shown]),
            *(f"reshaped {r.key}: {_km2(r.area_before_km2)} -> {_km2(r.area_after_km2)} km², "
              f"{_km2(r.symdiff_km2)} km² changed" for r in layer.reshaped[:shown])]
    more = sum(max(len(group) - shown, 0) for group in
               (layer.added, layer.removed, layer.renamed, layer.reshaped))
    return rows + ([f"... and {more} more (see --json)"] if more else [])


def _km2(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
