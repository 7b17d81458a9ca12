"""How answers are printed: a few lines for a person, JSON, or CSV rows in input order.

The CLI and the dashboard's API share these, so a point reads the same everywhere.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TextIO

from service.lookup.model import Answer, BadPoint, Registered

#: Separator of several areas in one CSV cell (a point on a shared border).
MULTI = "|"


def text(answer: Answer) -> str:
    """One line per area, border areas marked; or a line saying none holds the point; then
    a line per live dataset that has no lookup table, saying what to do."""
    lines = [f"lat {answer.lat}, lon {answer.lon}"]
    if not answer.hits:
        lines.append("  in no loaded area (nothing loaded, or open sea without an ocean zone)")
    width = max((len(hit.dataset) for hit in answer.hits), default=0)
    for hit in answer.hits:
        name = f"  {hit.name}" if hit.name else ""
        border = "  (on a shared border)" if hit.on_border else ""
        lines.append(f"  {hit.dataset:<{width}} {hit.source:<22} level {hit.level}  "
                     f"{hit.key}{name}{border}")
    lines += [f"  note: {missing.advice()}" for missing in answer.unindexed]
    return "\n".join(lines)


def as_json(answer: Answer) -> str:
    return json.dumps(answer.to_json(), ensure_ascii=False)


def csv_columns(tables: Sequence[Registered]) -> list[tuple[str, str, bool]]:
    """(source, column label, is the key) for every source, datasets and levels in order.

    A label two sources share (the ``tzid`` of two time zone variants, GADM's ``gid_0`` in
    two schemas) is prefixed with its table, ``timezone.timezones_land.tzid``, so each
    column names what it holds; a label no other source has is kept as it is.
    """
    plain = []
    for table in sorted(tables, key=lambda t: t.dataset):
        for source, (_level, key_label, name_label) in sorted(
                table.sources.items(), key=lambda item: item[1][0]):
            plain.append((source, key_label, True))
            if name_label:
                plain.append((source, name_label, False))
    uses = Counter(label for _source, label, _is_key in plain)
    return [(source, label if uses[label] == 1 else f"{source}.{label}", is_key)
            for source, label, is_key in plain]


def csv_header(columns: Sequence[tuple[str, str, bool]]) -> list[str]:
    return ["lat", "lon", *(label for _source, label, _is_key in columns), "on_border"]


def csv_row(answer: Answer, columns: Sequence[tuple[str, str, bool]]) -> list[str]:
    """Several areas in one cell are joined by :data:`MULTI`, in key order."""
    cells = [repr(answer.lat), repr(answer.lon)]
    for source, _label, is_key in columns:
        hits = [h for h in answer.hits if h.source == source]
        cells.append(MULTI.join((h.key if is_key else h.name or "") for h in hits))
    cells.append("true" if any(h.on_border for h in answer.hits) else "false")
    return cells


def read_points(stream: TextIO, *, file: str) -> Iterator[tuple[float, float]]:
    """``(lat, lon)`` per data row of a CSV whose header names ``lat`` and ``lon``.

    The header is checked at once, before anything is written; a bad value raises
    :class:`BadPoint` naming the file and line when its row is reached.
    """
    reader = csv.reader(stream)
    header = [h.strip().lower() for h in next(reader, [])]
    if "lat" not in header or "lon" not in header:
        raise BadPoint(f"{file}: the header row {','.join(header) or '(empty)'} has no "
                       "lat and lon columns", hint="start the file with a line: lat,lon")
    return _rows(reader, file, header.index("lat"), header.index("lon"))


def _rows(reader: Iterator[list[str]], file: str, lat_at: int,
          lon_at: int) -> Iterator[tuple[float, float]]:
    from service.lookup.query import check_point

    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{file} line {reader.line_num}"  # type: ignore[attr-defined]
        if len(row) <= max(lat_at, lon_at):
            raise BadPoint(f"{where}: expected a lat and a lon, got {','.join(row)!r}",
                           hint="one point per line: lat,lon")
        yield check_point(row[lat_at].strip(), row[lon_at].strip(),  # type: ignore[arg-type]
                          where=where)


def write_csv(out: IO[str], answers: Iterable[Answer],
              columns: Sequence[tuple[str, str, bool]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_header(columns))
    for answer in answers:
        writer.writerow(csv_row(answer, columns))
