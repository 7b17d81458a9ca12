"""Answer "which areas is this point in?" from every published lookup table.

Both functions call ``geoload.lookup_many`` (:mod:`service.ledger.lookup`): one round trip
per :data:`BATCH` points, each point one GiST probe per lookup table. A point outside
lon/lat bounds raises :class:`~service.lookup.model.BadPoint` before any query; a point
in no area gets an :class:`~service.lookup.model.Answer` with no hits; with nothing
loaded every answer is empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import psycopg

from service.lookup.build import registered
from service.lookup.coverage import unindexed
from service.lookup.model import Answer, BadPoint, Hit, Registered, Unindexed

#: Points per round trip. A batch joins the lookup table's pieces by grid cell in one
#: hash join, whose build is paid per batch: 20,000 points gave 52,000 points/s on the
#: benchmark's time zones, 100,000 gave 86,000. 50,000 keeps a batch's rows near 20 MB.
BATCH = 50_000


def check_point(lat: float | str, lon: float | str, *, where: str = "") -> tuple[float, float]:
    """``(lat, lon)`` as floats, or :class:`BadPoint` saying which bound it breaks."""
    at = f"{where}: " if where else ""
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise BadPoint(f"{at}lat and lon must be numbers, got {lat!r}, {lon!r}",
                       hint="give decimal degrees, e.g. 47.37 8.54") from None
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise BadPoint(f"{at}latitude {lat} is outside [-90, 90]",
                       hint="give latitude first, then longitude, in decimal degrees")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise BadPoint(f"{at}longitude {lon} is outside [-180, 180]",
                       hint="give latitude first, then longitude, in decimal degrees")
    return lat, lon


def lookup(conn: psycopg.Connection, lat: float, lon: float, *,
           datasets: Sequence[str] | None = None) -> Answer:
    """The areas at one point."""
    return lookup_many(conn, [(lat, lon)], datasets=datasets)[0]


def lookup_many(conn: psycopg.Connection, points: Iterable[tuple[float, float]],
                *, batch: int = BATCH, datasets: Sequence[str] | None = None) -> list[Answer]:
    """Answers for ``(lat, lon)`` points, in input order, :data:`BATCH` per round trip.

    ``datasets`` (e.g. ``["timezone"]``) keeps only those datasets' lookup tables. Each
    answer names the live datasets that have no lookup table (see :mod:`.coverage`).
    """
    checked = [check_point(lat, lon) for lat, lon in points]
    tables = [t for t in registered(conn) if datasets is None or t.dataset in datasets]
    missing = unindexed(conn, tables, datasets)
    if not tables:
        return [Answer(lat, lon, (), missing) for lat, lon in checked]
    labels = _labels(tables)
    wanted = list(datasets) if datasets is not None else None
    answers: list[Answer] = []
    for start in range(0, len(checked), batch):
        answers += _batch(conn, checked[start:start + batch], labels, wanted, missing)
    return answers


def _batch(conn: psycopg.Connection, points: Sequence[tuple[float, float]],
           labels: dict[str, tuple[str, str | None]], datasets: list[str] | None,
           missing: tuple[Unindexed, ...]) -> list[Answer]:
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    # %b: the arrays go in binary, not as text that psycopg would format float by float.
    rows = conn.execute(
        "SELECT i, dataset, source, level, key, name, on_border "
        "FROM geoload.lookup_many(%b::float8[], %b::float8[], %b::text[])",
        (lons, lats, datasets)).fetchall()
    hits: list[list[Hit]] = [[] for _ in points]
    for i, dataset, source, level, key, name, on_border in rows:
        hits[i - 1].append(Hit(dataset, source, level, key, name, on_border,
                               *labels.get(source, ("key", "name"))))
    return [Answer(lat, lon, tuple(h), missing)
            for (lat, lon), h in zip(points, hits, strict=True)]


def _labels(tables: Sequence[Registered]) -> dict[str, tuple[str, str | None]]:
    return {source: (key_label, name_label) for t in tables
            for source, (_level, key_label, name_label) in t.sources.items()}
