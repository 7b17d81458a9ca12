"""``geoload.changes``: each load's change report, kept with its load id.

``geoload.change_reports`` holds one row per compared load (first load or not, counts,
seconds), ``geoload.changes`` one row per changed key. Storing is idempotent (a
redelivered publish replaces the rows of its load), so it can run in the swap's
transaction under at-least-once delivery.

The tables are created with the rest of geoload's own (:mod:`service.ledger.schema`).
"""

from __future__ import annotations

import json

import psycopg

from service.changes.model import ChangeReport, LayerChanges, Renamed, Reshaped

_COLUMNS = ("load_id", "source", "change", "key", "fields", "area_before_km2", "area_after_km2",
            "symdiff_km2")


def save(conn: psycopg.Connection, report: ChangeReport) -> None:
    """Replace the stored report of ``report.load_id`` (rows COPYed, one transaction)."""
    with conn.transaction():
        conn.execute("DELETE FROM geoload.change_reports WHERE load_id = %s", (report.load_id,))
        conn.execute(
            "INSERT INTO geoload.change_reports (load_id, dataset, first_load, counts, seconds, "
            "layers) VALUES (%s, %s, %s, %s, %s, %s)",
            (report.load_id, report.dataset, report.first_load, json.dumps(report.counts()),
             report.seconds, [layer.source for layer in report.layers]))
        with conn.cursor() as cur, cur.copy(
                f"COPY geoload.changes ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for layer in report.layers:
                for row in _rows(report.load_id, layer):
                    copy.write_row(row)


def _rows(load_id: int, layer: LayerChanges) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = [
        *((load_id, layer.source, "added", k, None, None, None, None) for k in layer.added),
        *((load_id, layer.source, "removed", k, None, None, None, None) for k in layer.removed),
        *((load_id, layer.source, "renamed", r.key,
           json.dumps({f: list(v) for f, v in r.fields.items()}, ensure_ascii=False),
           None, None, None) for r in layer.renamed),
        *((load_id, layer.source, "reshaped", r.key, None, r.area_before_km2, r.area_after_km2,
           r.symdiff_km2) for r in layer.reshaped)]
    return rows


def load(conn: psycopg.Connection, load_id: int) -> ChangeReport | None:
    """The stored report of ``load_id``, or None if none was computed for it; its layers in
    the order compared, a layer without changes too (a report stored before the layers
    were kept has only those with changes)."""
    head = conn.execute("SELECT dataset, first_load, seconds, layers FROM geoload.change_reports "
                        "WHERE load_id = %s", (load_id,)).fetchone()
    if head is None:
        return None
    dataset, first_load, seconds, compared = head
    rows = conn.execute(
        "SELECT source, change, key, fields, area_before_km2, area_after_km2, symdiff_km2 "
        "FROM geoload.changes WHERE load_id = %s ORDER BY source, change, key COLLATE \"C\"",
        (load_id,)).fetchall()
    layers = {source: _kinds() for source in compared or ()}
    for source, change, key, fields, before, after, symdiff in rows:
        kinds = layers.setdefault(source, _kinds())
        kinds[change].append(
            Renamed(key, {f: (v[0], v[1]) for f, v in fields.items()}) if change == "renamed"
            else Reshaped(key, before, after, symdiff) if change == "reshaped" else key)
    return ChangeReport(dataset, load_id, first_load, tuple(
        LayerChanges(source, tuple(k["added"]), tuple(k["removed"]),  # type: ignore[arg-type]
                     tuple(k["renamed"]), tuple(k["reshaped"]))  # type: ignore[arg-type]
        for source, k in layers.items()), seconds)


def _kinds() -> dict[str, list[object]]:
    return {"added": [], "removed": [], "renamed": [], "reshaped": []}


def of_run(conn: psycopg.Connection, run_id: str) -> dict[str, ChangeReport | None]:
    """Each dataset of run ``run_id``: its load's stored report (None: not published)."""
    rows = conn.execute("SELECT dataset, load_id FROM geoload.loads WHERE run_id = %s "
                        "ORDER BY dataset", (run_id,)).fetchall()
    return {str(dataset): load(conn, int(load_id)) for dataset, load_id in rows}
